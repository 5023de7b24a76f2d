// Live updates: the server pushes the cache's version over server-sent events; on a change the page fetches
// its own URL as a fragment and swaps <main>, keeping focus on the control that had it. The log tail polls its
// own fragment every 5 s. Without JavaScript every page still works (reload it).
"use strict";
(function () {
  const main = document.getElementById("main");
  const toggle = document.getElementById("live");
  if (!main || !toggle) return;
  let source = null;
  let pending = false;

  async function refresh() {
    if (pending) return;
    pending = true;
    try {
      const url = new URL(window.location.href);
      url.searchParams.set("fragment", "1");
      const response = await fetch(url, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const focused = document.activeElement && document.activeElement.id;
      const log = document.getElementById("log-lines");
      const html = await response.text();
      const holder = document.createElement("div");
      holder.innerHTML = html;
      const fresh = holder.firstElementChild;
      // The log tail is refreshed by its own timer: keep the current text instead of flashing it empty.
      const freshLog = fresh.querySelector("#log-lines");
      if (log && freshLog) freshLog.replaceWith(log);
      main.replaceChildren(...fresh.childNodes);
      main.dataset.version = fresh.dataset.version;
      if (focused) {
        const again = document.getElementById(focused);
        if (again) again.focus();
      }
    } finally {
      pending = false;
    }
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/updates?since=" + encodeURIComponent(main.dataset.version || "0"));
    source.addEventListener("change", refresh);
  }

  async function tailLog() {
    const pre = document.getElementById("log-lines");
    const picker = document.getElementById("log-pod");
    if (!pre || !pre.dataset.src) return;
    const url = new URL(pre.dataset.src, window.location.href);
    if (picker && picker.value) url.searchParams.set("pod", picker.value);
    const response = await fetch(url);
    if (!response.ok) return;
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = await response.text();
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  document.addEventListener("change", (event) => {
    if (event.target && event.target.id === "log-pod") tailLog();
  });
  toggle.addEventListener("change", () => {
    if (toggle.checked) connect();
    else if (source) source.close();
  });
  connect();
  tailLog();
  setInterval(() => { if (toggle.checked) tailLog(); }, 5000);
})();
