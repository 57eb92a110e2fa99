// Live updates: one server-sent-events stream per tab (/console/live), closed while the
// tab is hidden. When its snapshot (the queues, and realtime's figures) changes, a page
// that shows live data (`live: true`) is drawn again in place; nothing polls per widget.
Console.live = (function () {
  let source = null;
  let last = null;

  function open() {
    if (source || document.hidden) return;
    source = new EventSource("/console/live");
    source.addEventListener("snapshot", (event) => {
      if (event.data === last) return;
      const first = last === null;
      last = event.data;
      if (!first && Console.current && Console.current.live) Console.redraw();
    });
    source.addEventListener("error", () => {
      // The browser reconnects by itself, unless the server refused (signed out).
      if (source && source.readyState === EventSource.CLOSED) source = null;
    });
  }

  function close() {
    if (source) source.close();
    source = null;
  }

  document.addEventListener("visibilitychange", () => (document.hidden ? close() : open()));
  return { open, close };
})();
