// Files: a bucket's files with a name-prefix filter and pages; upload by drag and drop
// or the file input, with progress; download, a signed link, delete.
Console.pages.files = {
  title: "Files",
  async render(main, arg) {
    const { h, api, table, when, session } = Console;
    const params = new URLSearchParams(arg || "");
    const bucket = params.get("bucket") || "default";
    const prefix = params.get("prefix") || "";
    const cursor = params.get("cursor") || "";
    const query = new URLSearchParams({ bucket, limit: "50" });
    if (prefix) query.set("name_prefix", prefix);
    if (cursor) query.set("cursor", cursor);
    const [page, declared] = await Promise.all([
      api("GET", "/api/v1/files?" + query),
      api("GET", "/api/v1/files/buckets"),
    ]);
    const go = (changes) => {
      const next = new URLSearchParams({ bucket, prefix, ...changes });
      location.hash = "#/files/" + encodeURIComponent(next.toString());
    };
    const bucketInput = h("select", { id: "bucket", name: "bucket" },
      declared.buckets.map((b) => h("option", { value: b.name, selected: b.name === bucket },
        b.name + " (up to " + b.max_file_size.toLocaleString() + " B" + (b.public ? ", public" : "") + ")")));
    const prefixInput = h("input", { id: "prefix", name: "prefix", value: prefix });
    const filter = h("form", { class: "panel row", onsubmit(event) {
      event.preventDefault();
      go({ bucket: bucketInput.value.trim() || "default", prefix: prefixInput.value, cursor: "" });
    } },
      h("div", {}, h("label", { for: "bucket" }, "Bucket"), bucketInput),
      h("div", {}, h("label", { for: "prefix" }, "Name starts with"), prefixInput),
      h("button", { type: "submit" }, "Show"));

    const progress = h("progress", { max: 100, value: 0, hidden: true, "aria-label": "Upload progress" });
    const status = h("p", { class: "muted", role: "status" });
    const picker = h("input", { id: "file", type: "file", onchange() { if (picker.files[0]) upload(picker.files[0]); } });
    const drop = h("div", { class: "drop", tabindex: 0,
      ondragover(e) { e.preventDefault(); drop.classList.add("over"); },
      ondragleave() { drop.classList.remove("over"); },
      ondrop(e) { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]); } },
      h("label", { for: "file" }, "Drop a file here, or choose one"), picker, progress, status);

    function upload(file) {
      // XMLHttpRequest reports upload progress; fetch does not.
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/files?" + new URLSearchParams({ bucket, name: file.name }));
      xhr.setRequestHeader("X-CSRF-Token", session.csrf);
      xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
      progress.hidden = false;
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total); };
      xhr.onload = () => {
        progress.hidden = true;
        const body = xhr.responseText ? JSON.parse(xhr.responseText) : {};
        if (xhr.status === 201) { Console.flashed = "Uploaded " + body.name + "."; Console.refresh(); }
        else status.textContent = body.detail || "The upload failed (" + xhr.status + ").";
      };
      xhr.onerror = () => { progress.hidden = true; status.textContent = "The upload failed."; };
      xhr.send(file);
    }

    const links = h("p", { class: "muted", role: "status" });
    main.replaceChildren(
      h("h1", {}, "Files"),
      filter,
      drop,
      links,
      h("div", { class: "panel" }, table([
        { title: "Name", cell: (f) => f.name },
        { title: "Size", num: true, cell: (f) => f.size.toLocaleString() + " B" },
        { title: "Type", cell: (f) => f.content_type },
        { title: "Uploaded", cell: (f) => when(f.created_at) },
        { title: "", cell: (f) => h("div", { class: "row" },
            h("a", { href: "/api/v1/files/" + encodeURIComponent(f.id) + "/content?download=true", download: f.name }, "Download"),
            h("button", { class: "quiet", async onclick() {
              const signed = await api("POST", "/api/v1/files/" + f.id + "/url", { download: true });
              links.replaceChildren("Signed link for ", f.name, ": ", h("a", { href: signed.url, rel: "noreferrer" }, "download"), " (until " + when(signed.expires_at) + ")");
            } }, "Signed link"),
            h("button", { class: "quiet", async onclick() {
              if (!confirm("Delete " + f.name + "?")) return;
              await api("DELETE", "/api/v1/files/" + f.id);
              Console.refresh();
            } }, "Delete")) },
      ], page.files),
        page.next_cursor ? h("div", { class: "row gap-top" }, h("button", { class: "quiet", onclick() { go({ cursor: page.next_cursor }); } }, "Next page")) : null));
  },
};
