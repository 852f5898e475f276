// rlhf label: the annotator's page and the admin dashboard. User text only ever reaches the page through
// textContent, never as markup, so it is shown as typed and cannot run.
"use strict";

const state = { token: null, assignment: null, key: null, task: "", choice: null, busy: false };
const $ = (id) => document.getElementById(id);

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

// A random idempotency key per assignment: every retry of one submission sends the same key.
function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(method, path, body, key) {
  const headers = { Authorization: "Bearer " + state.token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  if (response.status !== 204) { try { data = await response.json(); } catch { data = null; } }
  return { status: response.status, data };
}

function show(id, visible) { $(id).hidden = !visible; }
function status(text, error = false) { $("status").textContent = text; $("status").className = error ? "error" : ""; }

async function signIn(event) {
  event.preventDefault();
  state.token = $("token").value.trim();
  const me = await api("GET", "/api/me");
  if (me.status !== 200) { $("signin-error").textContent = "That token is not valid."; return; }
  sessionStorage.setItem("rlhf-token", state.token);
  start(me.data);
}

function start(me) {
  show("signin", false);
  $("who").textContent = me.name + (me.admin ? " (admin)" : "");
  if (location.pathname === "/admin") { show("dashboard", true); loadDashboard(); return; }
  show("work", true);
  show("progress-wrap", true);
  updateProgress(me);
  loadNext();
}

function updateProgress(me) {
  $("count").textContent = String(me.labels);
  const total = me.labels + me.available;
  $("progress").max = Math.max(total, 1);
  $("progress").value = me.labels;
  $("progress-text").textContent = me.labels + " of " + total + " done";
}

async function refreshProgress() {
  const me = await api("GET", "/api/me");
  if (me.status === 200) updateProgress(me.data);
}

async function loadNext() {
  const query = state.task ? "?task=" + encodeURIComponent(state.task) : "";
  const next = await api("GET", "/api/next" + query);
  if (next.status === 204) { state.assignment = null; show("item", false); show("empty", true); return; }
  if (next.status !== 200) { status((next.data && next.data.error) || "Could not load the next item.", true); return; }
  show("empty", false);
  render(next.data);
}

const HELP = {
  rank: "Order the responses best (top) to worst. Drag them, or focus one (Tab, or its number key) and move it with ↑/↓ (or k/j). Enter submits.",
  pair: "Which response is better? Click it or press 1 / 2, then Enter.",
  rate: "Rate each response from 1 (terrible) to 7 (excellent) and flag any problem. Enter submits.",
  demo: "Write (or edit) the response the assistant should give. Ctrl+Enter submits.",
};
const TITLES = { rank: "Rank the responses", pair: "Choose the better response", rate: "Rate the responses", demo: "Write a demonstration" };

function render(assignment) {
  state.assignment = assignment;
  state.key = newKey();
  state.choice = null;
  show("item", true);
  $("task-title").textContent = TITLES[assignment.task];
  $("help").textContent = HELP[assignment.task];
  $("prompt").textContent = assignment.prompt;
  const area = $("task-area");
  area.replaceChildren();
  if (assignment.task === "rank") area.append(rankList(assignment.responses));
  else if (assignment.task === "pair") area.append(pairCards(assignment.responses));
  else if (assignment.task === "rate") area.append(...assignment.responses.map(rateCard));
  else {
    const text = el("textarea", { id: "demonstration", maxlength: "20000", "aria-label": "Demonstration" });
    text.value = assignment.responses.length ? assignment.responses[0].text : "";
    area.append(text);
    text.focus();
  }
}

function card(response, index) {
  return el("li", { class: "card", tabindex: "0", draggable: "true", dataset: { id: String(response.id) } },
    [el("span", { class: "rank", text: String(index + 1) }), el("pre", { text: response.text })]);
}

function renumber(list) {
  [...list.children].forEach((item, i) => { item.querySelector(".rank").textContent = String(i + 1); });
}

function rankList(responses) {
  const list = el("ol", { id: "ranking", class: "cards" }, responses.map(card));
  let dragged = null;
  list.addEventListener("dragstart", (e) => {
    dragged = e.target.closest(".card");
    dragged.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", dragged.dataset.id);
  });
  list.addEventListener("dragend", () => { if (dragged) dragged.classList.remove("dragging"); dragged = null; renumber(list); });
  list.addEventListener("dragover", (e) => {
    e.preventDefault();
    const over = e.target.closest(".card");
    if (!dragged || !over || over === dragged) return;
    const box = over.getBoundingClientRect();
    list.insertBefore(dragged, e.clientY > box.top + box.height / 2 ? over.nextSibling : over);
  });
  list.addEventListener("drop", (e) => { e.preventDefault(); renumber(list); });
  list.addEventListener("keydown", (e) => {
    const item = e.target.closest(".card");
    if (!item) return;
    if ((e.key === "ArrowUp" || e.key === "k") && item.previousElementSibling) {
      list.insertBefore(item, item.previousElementSibling);
    } else if ((e.key === "ArrowDown" || e.key === "j") && item.nextElementSibling) {
      list.insertBefore(item.nextElementSibling, item);
    } else return;
    e.preventDefault();
    renumber(list);
    item.focus();
  });
  return list;
}

function pairCards(responses) {
  const list = el("ol", { id: "pair", class: "cards pair" }, responses.map(card));
  list.addEventListener("click", (e) => { const item = e.target.closest(".card"); if (item) choose(Number(item.dataset.id)); });
  return list;
}

function choose(id) {
  state.choice = id;
  for (const item of document.querySelectorAll("#pair .card")) item.classList.toggle("chosen", Number(item.dataset.id) === id);
}

function rateCard(response, index) {
  const quality = el("select", { class: "quality", "aria-label": "Quality of response " + (index + 1) },
    [el("option", { value: "", text: "quality…" }), ...[1, 2, 3, 4, 5, 6, 7].map((q) => el("option", { value: String(q), text: String(q) }))]);
  const flags = ["harmful", "wrong", "off_topic"].map((flag) =>
    el("label", {}, [el("input", { type: "checkbox", class: "flag", value: flag }), " " + flag.replace("_", "-")]));
  return el("div", { class: "card rate", dataset: { id: String(response.id) } },
    [el("span", { class: "rank", text: String(index + 1) }),
     el("div", {}, [el("pre", { text: response.text }), el("div", { class: "rating" }, [quality, ...flags])])]);
}

function labelBody() {
  const a = state.assignment;
  if (a.task === "rank") return { ranking: [...document.querySelectorAll("#ranking .card")].map((c) => Number(c.dataset.id)) };
  if (a.task === "pair") return state.choice === null ? "Choose a response first (1 or 2)." : { choice: state.choice };
  if (a.task === "rate") {
    const ratings = [];
    for (const c of document.querySelectorAll(".card.rate")) {
      const q = c.querySelector(".quality").value;
      if (!q) return "Give every response a quality from 1 to 7.";
      ratings.push({ response_id: Number(c.dataset.id), quality: Number(q), flags: [...c.querySelectorAll(".flag:checked")].map((f) => f.value) });
    }
    return { ratings };
  }
  const text = $("demonstration").value;
  return text.trim() ? { demonstration: text } : "Write the response first.";
}

async function submit() {
  if (!state.assignment || state.busy) return;
  const body = labelBody();
  if (typeof body === "string") { status(body, true); return; }
  body.assignment_id = state.assignment.assignment_id;
  state.busy = true;
  try {
    // Retries reuse the key, so a label the server committed before the connection broke is not counted twice.
    for (let attempt = 0; attempt < 5; attempt++) {
      let result;
      try { result = await api("POST", "/api/labels", body, state.key); }
      catch { await new Promise((r) => setTimeout(r, 500 * (attempt + 1))); continue; }
      if (result.status === 200 || result.status === 201) {
        status("Saved label #" + result.data.label_id + ".");
        $("count").textContent = String(result.data.labels);
        await refreshProgress();
        await loadNext();
        return;
      }
      if (result.status < 500) { status((result.data && result.data.error) || "The server refused the label.", true); return; }
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
    }
    status("The server did not answer; your label is kept here, press Enter to try again.", true);
  } finally { state.busy = false; }
}

document.addEventListener("keydown", (e) => {
  if (!state.assignment || $("work").hidden) return;
  const inText = e.target.tagName === "TEXTAREA";
  if (e.key === "Enter" && (!inText || e.ctrlKey) && e.target.tagName !== "BUTTON" && e.target.tagName !== "SELECT") { e.preventDefault(); submit(); return; }
  if (inText || e.target.tagName === "SELECT") return;
  const n = Number(e.key);
  if (n >= 1 && n <= 9) {
    const cards = document.querySelectorAll("#task-area .card");
    if (n > cards.length) return;
    if (state.assignment.task === "pair") choose(Number(cards[n - 1].dataset.id));
    else cards[n - 1].focus();
  }
});

function fmt(x, digits = 3) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }

async function loadDashboard() {
  const stats = await api("GET", "/api/admin/stats");
  if (stats.status !== 200) { $("dash-summary").textContent = (stats.data && stats.data.error) || "Could not load the dashboard."; return; }
  const d = stats.data;
  $("dash-summary").replaceChildren(
    el("p", { text: "labels: " + d.labels + " (last hour: " + d.labels_last_hour + ", overall " + fmt(d.labels_per_minute, 1) + " per minute)" }),
    el("p", { text: "pairwise agreement: " + fmt(d.pairwise_agreement) + " over " + d.pairwise_comparisons + " comparisons; Krippendorff's alpha (ordinal, rankings): " + fmt(d.krippendorff_alpha) }));
  $("dash-tasks").tBodies[0].replaceChildren(...d.tasks.map((t) =>
    el("tr", {}, [t.task, t.items, t.complete, t.labels].map((v) => el("td", { text: String(v) })))));
  $("dash-annotators").tBodies[0].replaceChildren(...d.annotators.map((a) =>
    el("tr", {}, [a.name + (a.admin ? " (admin)" : ""), a.labels, fmt(a.labels_per_hour, 1), fmt(a.majority_agreement), a.majority_comparisons]
      .map((v) => el("td", { text: String(v) })))));
}

document.addEventListener("DOMContentLoaded", async () => {
  $("signin-form").addEventListener("submit", signIn);
  $("submit").addEventListener("click", submit);
  $("refresh").addEventListener("click", loadDashboard);
  for (const b of document.querySelectorAll("#tasks button")) {
    b.setAttribute("aria-pressed", String(b.dataset.task === state.task));
    b.addEventListener("click", () => {
      state.task = b.dataset.task;
      for (const o of document.querySelectorAll("#tasks button")) o.setAttribute("aria-pressed", String(o === b));
      loadNext();
    });
  }
  const saved = sessionStorage.getItem("rlhf-token");
  if (saved) {
    state.token = saved;
    const me = await api("GET", "/api/me");
    if (me.status === 200) start(me.data);
  }
});
