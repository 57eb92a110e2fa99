// The console's frame: the session check at load, the navigation, the pages by their
// address (#/overview, #/queues/<name>), and sign-out.
(function () {
  const { h, api, session, pages } = Console;
  const root = document.getElementById("app");
  const order = ["overview", "queues", "job", "schedules", "files", "realtime", "webhooks", "audit", "keys"];

  async function start() {
    // 204 (no body) when this browser is not signed in.
    const current = await api("GET", "/console/session");
    if (!current) return Console.signIn(root, show);
    Object.assign(session, { csrf: current.csrf_token, holder: current.holder, scopes: current.scopes });
    show();
  }

  function route() {
    const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
    const arg = rest.join("/");
    return { name: pages[name] ? name : "overview", arg: arg ? decodeURIComponent(arg) : undefined };
  }

  function show() {
    const { name, arg } = route();
    const who = session.holder && session.holder.kind === "key" ? "key " + session.holder.prefix : "admin token";
    const main = h("main", { id: "main" });
    // A message from the last action (an upload, a retry), shown once above the page.
    const flash = h("p", { id: "flash", class: "muted", role: "status" }, Console.flashed || "");
    Console.flashed = null;
    root.replaceChildren(
      h("header", { class: "bar" },
        h("span", { class: "brand" }, "Switchyard"),
        h("nav", { "aria-label": "Pages" }, h("ul", {}, order.map((page) =>
          h("li", {}, h("a", { href: "#/" + page, "aria-current": page === name ? "page" : null }, pages[page].title))),
          h("li", {}, h("a", { href: "/docs" }, "API reference")))),
        h("div", { class: "account" },
          h("span", { class: "who", title: "Signed in with the " + who }, who),
          h("button", { class: "quiet", onclick: signOut }, "Sign out"))),
      h("div", { class: "flash" }, flash),
      main);
    document.title = pages[name].title + " · Switchyard";
    Console.current = pages[name];
    Console.live.open();
    pages[name].render(main, arg).then(() => performance.mark("console:drawn")).catch((problem) => {
      if (problem.status === 401) return Console.signIn(root, show);
      main.replaceChildren(h("p", { class: "error", role: "alert" }, problem.message));
    });
  }

  async function signOut() {
    Console.live.close();
    await api("DELETE", "/console/session").catch(() => {});
    Object.assign(session, { csrf: null, holder: null, scopes: [] });
    // Forms a page keeps across redraws are not handed to whoever signs in next.
    for (const page of Object.values(pages)) delete page.form;
    Console.signIn(root, show);
  }

  // A live update draws the page again in place: the frame, the focused control and
  // whatever was typed into a field stay as they were, so a keyboard user is not thrown
  // back to the top every time a job finishes.
  async function redraw() {
    const main = document.getElementById("main");
    const { name, arg } = route();
    if (!main || Console.current !== pages[name]) return show();
    const fresh = h("main", { id: "main" });
    try {
      await pages[name].render(fresh, arg);
    } catch (problem) {
      if (problem.status === 401) return Console.signIn(root, show);
      return;
    }
    if (!main.isConnected || Console.current !== pages[name]) return;
    const controls = (within) => Array.from(within.querySelectorAll("a, button, input, select, textarea"));
    const before = controls(main);
    const focused = before.indexOf(document.activeElement);
    for (const field of main.querySelectorAll("input[id], textarea[id], select[id]")) {
      const twin = fresh.querySelector("#" + CSS.escape(field.id));
      if (twin && field.type !== "file" && field.value !== field.defaultValue) twin.value = field.value;
    }
    main.replaceWith(fresh);
    if (focused >= 0) {
      const id = before[focused].id;
      const again = (id && fresh.querySelector("#" + CSS.escape(id))) || controls(fresh)[focused];
      if (again) again.focus();
    }
  }

  Console.refresh = show;
  Console.redraw = redraw;
  window.addEventListener("hashchange", show);
  start();
})();
