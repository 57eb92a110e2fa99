// Server-rendered, on Node: the API routes run on every request, and `npm start` serves
// the built site with @astrojs/node's standalone server (HOST and PORT from the environment).
import node from "@astrojs/node";
import { defineConfig } from "astro/config";

// Astro trusts a request's Host header only for these names; for any other it takes the
// site to be `localhost`, and then refuses a same-origin POST from the page as cross-site.
// Build with PUBLIC_URL set to add the name the service is reached by.
const hostnames = new Set(["127.0.0.1", "localhost"]);
if (process.env.PUBLIC_URL) hostnames.add(new URL(process.env.PUBLIC_URL).hostname);

export default defineConfig({
  output: "server",
  adapter: node({ mode: "standalone" }),
  security: { allowedDomains: [...hostnames].map((hostname) => ({ hostname })) },
  telemetry: false,
});
