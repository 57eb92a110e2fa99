// Parses every PromQL expression Switchyard ships with Prometheus's own grammar (npm
// @prometheus-io/lezer-promql, the parser of Prometheus's web UI): the Grafana
// dashboard's queries (with its variables given sample values) and the alert rules. A
// syntax error anywhere fails the check, naming the expression and where it broke.
import { readFileSync } from "node:fs";
import { parser } from "@prometheus-io/lezer-promql";
import { parse as parseYaml } from "yaml";

const root = new URL("../../", import.meta.url);
const read = (path) => readFileSync(new URL(path, root), "utf8");

/** Every string under `key` anywhere in `value`. */
const under = (value, key, out = []) => {
  if (Array.isArray(value)) value.forEach((v) => under(v, key, out));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === key && typeof v === "string") out.push(v);
      else under(v, key, out);
    }
  }
  return out;
};

// Grafana's variables, as Grafana substitutes them before a query reaches Prometheus.
const grafana = (expr) =>
  expr.replaceAll("$__rate_interval", "1m").replaceAll("$queue", "default|mails");

const dashboard = JSON.parse(read("deploy/grafana/switchyard.json"));
const alerts = parseYaml(read("deploy/prometheus/alerts.yaml"));
const expressions = [
  ...under(dashboard, "expr").map((e) => ["deploy/grafana/switchyard.json", grafana(e)]),
  ...under(alerts, "expr").map((e) => ["deploy/prometheus/alerts.yaml", e]),
];
const problems = [];
for (const [file, expr] of expressions) {
  const tree = parser.parse(expr);
  tree.iterate({
    enter(node) {
      if (node.type.isError) {
        problems.push(`${file}: ${expr}\n  does not parse at ${node.from}: ${JSON.stringify(expr.slice(node.from, node.from + 20))}`);
        return false;
      }
    },
  });
}
const rules = alerts.groups.flatMap((g) => g.rules);
for (const rule of rules) {
  if (!rule.alert || !rule.expr || !rule.annotations?.summary) {
    problems.push(`deploy/prometheus/alerts.yaml: a rule lacks alert, expr or a summary: ${JSON.stringify(rule)}`);
  }
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`PromQL: ${expressions.length} expressions parse (${rules.length} alert rules)`);
