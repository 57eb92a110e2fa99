// Realtime: sockets open on every hub, the busiest channels with their subscribers, each
// hub's own figures, and a form that publishes a test event to a channel.
Console.pages.realtime = {
  title: "Realtime",
  live: true,
  async render(main) {
    const { h, api, table, when } = Console;
    const stats = await api("GET", "/api/v1/realtime/stats");
    // The form is made once and kept: a live redraw moves it, with what was typed and
    // the answer to a publish still under way, instead of making a new one.
    const form = this.form || (this.form = Console.publishForm());
    const stat = (label, value) => h("div", { class: "panel" }, h("div", { class: "muted" }, label), h("div", { class: "stat" }, value));
    main.replaceChildren(
      h("h1", {}, "Realtime"),
      h("div", { class: "grid" },
        stat("Sockets", stats.connections), stat("Hubs", stats.hubs.length),
        stat("Channels in use", stats.hubs.reduce((n, hub) => n + hub.channels, 0))),
      h("h2", {}, "Busiest channels"),
      h("div", { class: "panel" }, table([
        { title: "Channel", cell: (c) => h("code", {}, c.channel) },
        { title: "Subscribers", num: true, cell: (c) => c.subscribers },
      ], stats.channels)),
      h("h2", {}, "Hubs"),
      h("div", { class: "panel" }, table([
        { title: "Hub", cell: (hub) => hub.hub },
        { title: "Sockets", num: true, cell: (hub) => hub.connections },
        { title: "Channels", num: true, cell: (hub) => hub.channels },
        { title: "Redis subscriber", cell: (hub) => h("span", { class: "badge " + (hub.subscriber ? "up" : "down") }, hub.subscriber ? "connected" : "reconnecting") },
        { title: "Reported", cell: (hub) => when(new Date(hub.at_ms).toISOString()) },
      ], stats.hubs)),
      h("h2", {}, "Publish a test event"),
      form);
  },
};

// Publishes a test event: a channel, an event name and JSON data.
Console.publishForm = function () {
  const { h, api } = Console;
  const channel = h("input", { id: "rt-channel", name: "channel", required: true, value: "console.test" });
  const event = h("input", { id: "rt-event", name: "event", required: true, value: "console.test" });
  const data = h("textarea", { id: "rt-data", name: "data", rows: 3 }, '{"hello": "from the console"}');
  const result = h("p", { role: "status", class: "muted" });
  return h("form", { class: "panel", onsubmit: async (e) => {
    e.preventDefault();
    result.className = "muted";
    try {
      let parsed;
      try {
        parsed = data.value.trim() ? JSON.parse(data.value) : null;
      } catch (bad) {
        throw new Error("The data is not JSON: " + bad.message);
      }
      const published = await api("POST", "/api/v1/realtime/publish", { channel: channel.value.trim(), event: event.value.trim(), data: parsed });
      result.textContent = "Published to " + published.channel + " at offset " + published.offset + ".";
    } catch (problem) {
      result.className = "error";
      result.textContent = problem.message;
    }
  } },
    h("div", { class: "grid" },
      h("div", {}, h("label", { for: "rt-channel" }, "Channel"), channel),
      h("div", {}, h("label", { for: "rt-event" }, "Event"), event)),
    h("div", { class: "gap-top" }, h("label", { for: "rt-data" }, "Data (JSON)"), data),
    h("div", { class: "row gap-top" }, h("button", { type: "submit" }, "Publish"), result));
};
