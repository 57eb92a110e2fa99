// Webhooks: the endpoints with their state, and an endpoint's delivery log with replay.
Console.pages.webhooks = {
  title: "Webhooks",
  live: false,
  async render(main, id) {
    const { h, api, table, when } = Console;
    const listed = await api("GET", "/api/v1/webhooks");
    const parts = [
      h("h1", {}, "Webhooks"),
      h("div", { class: "panel" }, table([
        { title: "URL", cell: (e) => h("a", { href: "#/webhooks/" + e.id }, e.url) },
        { title: "Events", cell: (e) => e.event_types.join(", ") },
        { title: "State", cell: (e) => e.enabled
            ? h("span", { class: "badge up" }, "enabled")
            : h("span", { class: "badge down", title: e.disabled_reason || "" }, "disabled") },
        { title: "Failing since", cell: (e) => (e.failing_since ? when(e.failing_since) + " (" + e.consecutive_failures + ")" : "") },
        { title: "Description", cell: (e) => e.description },
      ], listed.endpoints)),
    ];
    if (id) {
      const endpoint = listed.endpoints.find((e) => e.id === id);
      const page = await api("GET", "/api/v1/webhooks/" + encodeURIComponent(id) + "/deliveries?limit=50");
      parts.push(
        h("h2", {}, "Deliveries to " + (endpoint ? endpoint.url : id)),
        h("div", { class: "panel" }, table([
          { title: "Event", cell: (d) => d.event_type },
          { title: "Status", cell: (d) => d.status + (d.last_status ? " (HTTP " + d.last_status + ")" : "") },
          { title: "Attempts", num: true, cell: (d) => d.attempts },
          { title: "Last error", cell: (d) => h("pre", {}, d.last_error || "") },
          { title: "Next attempt", cell: (d) => when(d.next_attempt_at) },
          { title: "Created", cell: (d) => when(d.created_at) },
          { title: "", cell: (d) => h("button", { class: "quiet", onclick: Console.action(async () => {
              await api("POST", "/api/v1/webhooks/" + encodeURIComponent(id) + "/deliveries/" + encodeURIComponent(d.id) + "/replay", {});
              Console.flashed = "Replayed the delivery of " + d.event_type + ".";
              Console.refresh();
            }) }, "Replay") },
        ], page.deliveries)));
    }
    main.replaceChildren(...parts);
  },
};
