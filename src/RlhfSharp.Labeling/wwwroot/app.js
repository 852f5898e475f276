// rlhf label: the annotator's page and the admin dashboard. User text only ever reaches the page through
// textContent, never as markup, so it is shown as typed and cannot run.
"use strict";

const state = { token: null, assignment: null, key: null, task: "", choice: null, busy: false, statusTimer: null, me: null };
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

// A note about what just happened to the previous item fades after a while, so it is not read as being about the next.
function status(text, error = false, fade = false) {
  clearTimeout(state.statusTimer);
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
  if (fade) state.statusTimer = setTimeout(() => { $("status").textContent = ""; }, 8000);
}

async function signIn(event) {
  event.preventDefault();
  state.token = $("token").value.trim();
  const me = await api("GET", "/api/me");
  if (me.status !== 200) { $("signin-error").textContent = "That token is not valid."; return; }
  sessionStorage.setItem("rlhf-token", state.token);
  $("signin-error").textContent = "";
  start(me.data);
}

// Tokens are bearer tokens kept in this tab only: signing out forgets it here (the server keeps no session to end).
function signOut() {
  sessionStorage.removeItem("rlhf-token");
  Object.assign(state, { token: null, assignment: null, key: null, task: "", choice: null, me: null });
  for (const id of ["work", "dashboard", "progress-wrap", "signout", "item", "empty"]) show(id, false);
  $("who").textContent = "";
  status("");
  $("token").value = "";
  show("signin", true);
  $("signin-error").textContent = "Signed out.";
  $("token").focus();
}

function start(me) {
  show("signin", false);
  show("signout", true);
  $("who").textContent = me.name + (me.admin ? " (admin)" : "");
  if (location.pathname === "/admin") { show("dashboard", true); loadDashboard(); return; }
  show("work", true);
  show("progress-wrap", true);
  setFilter(state.task);
  updateProgress(me);
  loadNext();
}

function updateProgress(me) {
  state.me = me;
  $("count").textContent = String(me.labels);
  const total = me.labels + me.available;
  $("progress").max = Math.max(total, 1);
  $("progress").value = me.labels;
  $("progress-text").textContent = me.labels + " of " + total + " done";
  // Each filter says how many items wait in it, so a filter that hides work cannot go unnoticed.
  for (const b of document.querySelectorAll("#tasks button")) {
    const n = b.dataset.task ? (me.available_by_task || {})[b.dataset.task] || 0 : me.available;
    b.querySelector(".n").textContent = "(" + n + ")";
  }
}

async function refreshProgress() {
  const me = await api("GET", "/api/me");
  if (me.status === 200) updateProgress(me.data);
}

function setFilter(task) {
  state.task = task;
  for (const o of document.querySelectorAll("#tasks button")) o.setAttribute("aria-pressed", String(o.dataset.task === task));
}

const TASK_NAMES = { rank: "rank", pair: "pair", rate: "rate", demo: "write" };

async function loadNext() {
  const query = state.task ? "?task=" + encodeURIComponent(state.task) : "";
  const next = await api("GET", "/api/next" + query);
  if (next.status === 204) { state.assignment = null; show("item", false); showEmpty(); return; }
  if (next.status !== 200) { status((next.data && next.data.error) || "Could not load the next item.", true); return; }
  show("empty", false);
  render(next.data);
}

// Says why nothing is shown: a filter hiding the other tasks' items, other annotators holding the rest, or truly done.
function showEmpty() {
  const me = state.me || { available: 0, available_by_task: {}, held_by_others: 0 };
  const elsewhere = state.task ? me.available - ((me.available_by_task || {})[state.task] || 0) : 0;
  let text = state.task ? "No " + TASK_NAMES[state.task] + " items left for you." : "Nothing left to label. Thank you!";
  if (elsewhere > 0) text += " " + elsewhere + (elsewhere === 1 ? " item waits" : " items wait") + " in other tasks.";
  if (!elsewhere && me.held_by_others > 0)
    text += " " + me.held_by_others + (me.held_by_others === 1 ? " item is" : " items are") + " open with other annotators; it may come back to you if they skip it.";
  $("empty-text").textContent = text;
  show("show-all", elsewhere > 0);
  show("empty", true);
  (elsewhere > 0 ? $("show-all") : $("undo-empty")).focus();
}

const HELP = {
  rank: "Order the responses best (top) to worst. Drag them, or focus one (Tab, or its number key) and move it with ↑/↓ (or k/j). Enter submits.",
  pair: "Which response is better? Click it or press 1 / 2; if neither is better, press T (tie). Then Enter.",
  rate: "Rate each response from 1 (terrible) to 7 (excellent): click a number, or press 1–7 for the highlighted response. Tab reaches the flags (Space ticks one). Enter submits.",
  demo: "Write (or edit) the response the assistant should give. Ctrl+Enter submits; Esc leaves the text box (then S skips, U undoes).",
};
const TITLES = { rank: "Rank the responses", pair: "Choose the better response", rate: "Rate the responses", demo: "Write a demonstration" };

// previous: the label being changed after an undo, shown as it was given.
function render(assignment, previous = null) {
  state.assignment = assignment;
  state.key = newKey();
  state.choice = null;
  show("item", true);
  $("task-title").textContent = TITLES[assignment.task] + (state.task ? " (showing " + TASK_NAMES[state.task] + " items only)" : "");
  $("help").textContent = HELP[assignment.task];
  $("prompt").textContent = assignment.prompt;
  $("submit").textContent = assignment.task === "demo" ? "Submit (Ctrl+Enter)" : "Submit (Enter)";
  show("tie", assignment.task === "pair");
  $("tie").setAttribute("aria-pressed", "false");
  const area = $("task-area");
  area.replaceChildren();
  let focus;
  if (assignment.task === "rank") {
    let responses = assignment.responses;
    if (previous && previous.ranking) responses = previous.ranking.map((id) => responses.find((r) => r.id === id));
    const list = rankList(responses);
    area.append(list);
    focus = list.firstElementChild;
  } else if (assignment.task === "pair") {
    const list = pairCards(assignment.responses);
    area.append(list);
    if (previous && previous.tie) choose("tie");
    else if (previous && previous.choice) choose(previous.choice);
    focus = list;
  } else if (assignment.task === "rate") {
    const cards = assignment.responses.map(rateCard);
    area.append(...cards);
    if (previous && previous.ratings)
      for (const r of previous.ratings) {
        const c = area.querySelector('.card.rate[data-id="' + r.response_id + '"]');
        setQuality(c, r.quality);
        for (const f of r.flags || []) c.querySelector('.flag[value="' + f + '"]').checked = true;
      }
    focus = cards[0];
  } else {
    const text = el("textarea", { id: "demonstration", maxlength: "20000", "aria-label": "Demonstration" });
    text.value = previous && previous.demonstration !== undefined ? previous.demonstration : assignment.responses.length ? assignment.responses[0].text : "";
    area.append(text);
    focus = text;
  }
  // Focus moves into the new item: left on a task button or Submit, Enter would press that button instead of submitting.
  focus.focus();
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
  const list = el("ol", { id: "pair", class: "cards pair", tabindex: "-1", "aria-label": "The two responses" }, responses.map(card));
  list.addEventListener("click", (e) => { const item = e.target.closest(".card"); if (item) choose(Number(item.dataset.id)); });
  return list;
}

// choice: a response id, or "tie".
function choose(choice) {
  state.choice = choice;
  for (const item of document.querySelectorAll("#pair .card")) {
    item.classList.toggle("chosen", Number(item.dataset.id) === choice);
    item.classList.toggle("tied", choice === "tie");
  }
  $("tie").setAttribute("aria-pressed", String(choice === "tie"));
}

function rateCard(response, index) {
  const name = "quality-" + response.id;
  const scale = el("span", { class: "scale", role: "radiogroup", "aria-label": "Quality of response " + (index + 1) + ", 1 (terrible) to 7 (excellent)" },
    [1, 2, 3, 4, 5, 6, 7].map((q) => el("label", { class: "q" }, [el("input", { type: "radio", name, value: String(q) }), String(q)])));
  const flags = ["harmful", "wrong", "off_topic"].map((flag) =>
    el("label", {}, [el("input", { type: "checkbox", class: "flag", value: flag }), " " + flag.replace("_", "-")]));
  return el("div", { class: "card rate", tabindex: "0", dataset: { id: String(response.id) } },
    [el("span", { class: "rank", text: String(index + 1) }),
     el("div", {}, [el("pre", { text: response.text }), el("div", { class: "rating" }, [el("span", { text: "quality:" }), scale, el("span", { text: "flags:" }), ...flags])])]);
}

function setQuality(card, q) {
  const radio = card.querySelector('input[type=radio][value="' + q + '"]');
  if (radio) radio.checked = true;
}

function quality(card) {
  const checked = card.querySelector("input[type=radio]:checked");
  return checked ? Number(checked.value) : null;
}

function labelBody() {
  const a = state.assignment;
  if (a.task === "rank") return { ranking: [...document.querySelectorAll("#ranking .card")].map((c) => Number(c.dataset.id)) };
  if (a.task === "pair") {
    if (state.choice === null) return "Choose a response first (1 or 2), or T for a tie.";
    return state.choice === "tie" ? { tie: true } : { choice: state.choice };
  }
  if (a.task === "rate") {
    const ratings = [];
    for (const c of document.querySelectorAll(".card.rate")) {
      const q = quality(c);
      if (q === null) { c.focus(); return "Give every response a quality from 1 to 7 (response " + c.querySelector(".rank").textContent + " has none)."; }
      ratings.push({ response_id: Number(c.dataset.id), quality: q, flags: [...c.querySelectorAll(".flag:checked")].map((f) => f.value) });
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
        status("Saved your label of the previous item (#" + result.data.label_id + "). U undoes it.", false, true);
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

async function skip() {
  if (!state.assignment || state.busy) return;
  state.busy = true;
  try {
    const result = await api("POST", "/api/assignments/" + state.assignment.assignment_id + "/skip");
    if (result.status !== 200) { status((result.data && result.data.error) || "Could not skip.", true); return; }
    status("Skipped the previous item. U undoes it.", false, true);
    await refreshProgress();
    await loadNext();
  } finally { state.busy = false; }
}

async function undo() {
  if (state.busy) return;
  state.busy = true;
  try {
    const result = await api("POST", "/api/undo");
    if (result.status === 404) { status("Nothing to undo.", true); return; }
    if (result.status !== 200) { status((result.data && result.data.error) || "Could not undo.", true); return; }
    const d = result.data;
    status(d.label_id ? "Took back label #" + d.label_id + ": change it and submit again." : "Took back the skip.", false, true);
    await refreshProgress();
    show("empty", false);
    render(d.assignment, d.previous);
  } finally { state.busy = false; }
}

document.addEventListener("keydown", (e) => {
  if ($("work").hidden) return;
  const tag = e.target.tagName;
  const inText = tag === "TEXTAREA" || tag === "INPUT" && e.target.type === "text";
  if (inText) {
    if (e.key === "Enter" && e.ctrlKey) { e.preventDefault(); submit(); }
    else if (e.key === "Escape") e.target.blur();
    return;
  }
  if (e.ctrlKey || e.altKey || e.metaKey) return;
  // A focused button does what it says on Enter/Space (the browser clicks it); everywhere else Enter submits.
  if (tag === "BUTTON" && (e.key === "Enter" || e.key === " ")) return;
  const key = e.key.toLowerCase();
  if (key === "u") { e.preventDefault(); undo(); return; }
  if (!state.assignment) return;
  if (e.key === "Enter") { e.preventDefault(); submit(); return; }
  if (key === "s") { e.preventDefault(); skip(); return; }
  const task = state.assignment.task;
  if (key === "t" && task === "pair") { e.preventDefault(); choose("tie"); return; }
  const n = Number(e.key);
  if (!(n >= 1 && n <= 9)) return;
  if (task === "rate") {
    if (n > 7) return;
    e.preventDefault();
    const cards = [...document.querySelectorAll(".card.rate")];
    // The highlighted response: the one holding focus, else the first without a quality.
    const current = e.target.closest && e.target.closest(".card.rate") || cards.find((c) => quality(c) === null) || cards[0];
    setQuality(current, n);
    const next = cards.slice(cards.indexOf(current) + 1).find((c) => quality(c) === null) || cards.find((c) => quality(c) === null);
    (next || current).focus();
    return;
  }
  const cards = document.querySelectorAll("#task-area .card");
  if (n > cards.length) return;
  if (task === "pair") choose(Number(cards[n - 1].dataset.id));
  else cards[n - 1].focus();
});

function fmt(x, digits = 3) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }

async function loadDashboard() {
  const stats = await api("GET", "/api/admin/stats");
  if (stats.status !== 200) { $("dash-summary").textContent = (stats.data && stats.data.error) || "Could not load the dashboard."; return; }
  const d = stats.data;
  const perMinute = d.labels_per_minute === null ? "no rate yet" : fmt(d.labels_per_minute, 1) + " per minute overall";
  $("dash-summary").replaceChildren(
    el("p", { text: "labels: " + d.labels + " (last hour: " + d.labels_last_hour + "; " + perMinute + ")" }),
    el("p", { text: "pairwise agreement: " + fmt(d.pairwise_agreement) + " over " + d.pairwise_comparisons + " comparisons; Krippendorff's alpha (ordinal, rankings): " + fmt(d.krippendorff_alpha) }));
  $("dash-rate-rule").textContent = "– : not enough data yet; " + d.rate_rule + ".";
  $("dash-tasks").tBodies[0].replaceChildren(...d.tasks.map((t) =>
    el("tr", {}, [t.task, t.items, t.complete, t.labels].map((v) => el("td", { text: String(v) })))));
  $("dash-annotators").tBodies[0].replaceChildren(...d.annotators.map((a) =>
    el("tr", {}, [a.name + (a.admin ? " (admin)" : ""), a.labels, fmt(a.labels_per_hour, 1), fmt(a.majority_agreement), a.majority_comparisons]
      .map((v) => el("td", { text: String(v) })))));
}

document.addEventListener("DOMContentLoaded", async () => {
  $("signin-form").addEventListener("submit", signIn);
  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  $("undo-empty").addEventListener("click", undo);
  $("tie").addEventListener("click", () => choose("tie"));
  $("signout").addEventListener("click", signOut);
  $("refresh").addEventListener("click", loadDashboard);
  $("show-all").addEventListener("click", () => { setFilter(""); loadNext(); });
  for (const b of document.querySelectorAll("#tasks button"))
    b.addEventListener("click", () => { setFilter(b.dataset.task); loadNext(); });
  setFilter("");
  const saved = sessionStorage.getItem("rlhf-token");
  if (saved) {
    state.token = saved;
    const me = await api("GET", "/api/me");
    if (me.status === 200) start(me.data);
  }
});
