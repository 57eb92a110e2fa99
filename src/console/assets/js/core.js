// What every page of the console uses: the session (kept in memory, never in storage),
// API calls that carry the CSRF token on changes, problem documents as errors, and a
// small DOM builder that sets text, never HTML, so nothing from the API runs as markup.
"use strict";
var Console = (function () {
  const session = { csrf: null, holder: null, scopes: [] };

  class Problem extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || "HTTP " + status);
      this.status = status;
      this.code = body && body.code;
      this.field = body && body.field;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && method !== "HEAD" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
    const response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const parsed = text ? JSON.parse(text) : null;
    if (!response.ok) throw new Problem(response.status, parsed);
    return parsed;
  }

  // h("td", {class: "num"}, "3") makes <td class="num">3</td>.
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function table(columns, rows) {
    return h("div", { class: "scroll" },
      h("table", {},
        h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null, scope: "col" }, c.title)))),
        h("tbody", {}, rows.length
          ? rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(row)))))
          : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "Nothing here.")))));
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  // A button's handler whose refusal (a problem document) is shown above the page
  // instead of lost as an unhandled rejection.
  function action(handler) {
    return async (...args) => {
      try {
        await handler(...args);
      } catch (problem) {
        Console.flashed = problem.message;
        Console.refresh();
      }
    };
  }

  return { session, Problem, api, h, table, when, action, pages: {} };
})();
