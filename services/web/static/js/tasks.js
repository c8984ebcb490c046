// The task list: filters, keyset paging (next_cursor), create, complete, edit, delete.
// Every update sends If-Match with the task's ETag; a 412 says "changed elsewhere" and reloads it.
import {
  ApiError,
  createTask,
  deleteTask,
  describeError,
  getTask,
  listTasks,
  updateTask,
} from "./api.js";
import { fill, h } from "./dom.js";

const PAGE_SIZE = 20;
const PRIORITY_LABELS = { low: "Low", medium: "Medium", high: "High" };
const CHANGED_ELSEWHERE =
  "This task was changed elsewhere, so your change was not saved. It now shows the current version.";
const byId = (id) => document.getElementById(id);

const state = {
  tasks: new Map(), // id -> the task as last shown
  etags: new Map(), // id -> ETag of the version shown, once the UI has read it
  cursor: null,
  controller: null,
  onWrite: () => {},
};

export function say(text, kind = "info") {
  const message = byId("message");
  message.className = `message ${kind}`;
  fill(message, text);
}

function filters() {
  const form = byId("filters");
  return {
    priorities: [...form.querySelectorAll('input[name="priority"]:checked')].map((i) => i.value),
    completed: form.elements.completed.value,
    q: form.elements.q.value.trim(),
    sort: form.elements.sort.value,
    limit: PAGE_SIZE,
  };
}

function matchesFilters(task) {
  const f = filters();
  if (f.priorities.length && !f.priorities.includes(task.priority)) return false;
  if (f.completed && String(task.completed) !== f.completed) return false;
  return !f.q || task.title.toLowerCase().includes(f.q.toLowerCase());
}

function summary() {
  const shown = state.tasks.size;
  const more = state.cursor ? "; more below" : "";
  fill(byId("list-summary"), shown ? `Showing ${shown} task${shown === 1 ? "" : "s"}${more}.` : "No tasks match.");
  byId("load-more").hidden = !state.cursor;
}

/** Reloads the list from the first page with the current filters. */
export async function reloadList() {
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  try {
    const { data } = await listTasks(filters(), null, controller.signal);
    if (controller.signal.aborted) return;
    state.tasks.clear();
    state.etags.clear();
    fill(byId("task-list"), data.items.map(row));
    for (const task of data.items) state.tasks.set(task.id, task);
    state.cursor = data.next_cursor;
    summary();
  } catch (error) {
    if (error.name !== "AbortError") say(`Could not load tasks: ${describeError(error)}`, "error");
  }
}

async function loadMore() {
  const button = byId("load-more");
  button.disabled = true;
  try {
    const { data } = await listTasks(filters(), state.cursor);
    const fresh = data.items.filter((task) => !state.tasks.has(task.id));
    for (const task of fresh) state.tasks.set(task.id, task);
    byId("task-list").append(...fresh.map(row));
    state.cursor = data.next_cursor;
    summary();
  } catch (error) {
    say(`Could not load more tasks: ${describeError(error)}`, "error");
  } finally {
    button.disabled = false;
  }
}

function rowOf(id) {
  return byId("task-list").querySelector(`li[data-id="${id}"]`);
}

function row(task) {
  const created = new Date(task.created_at);
  return h(
    "li",
    { className: `task${task.completed ? " completed" : ""}`, "data-id": task.id },
    h(
      "span",
      { className: "task-done" },
      h("input", {
        type: "checkbox",
        id: `done-${task.id}`,
        checked: task.completed,
        "aria-label": `Completed: ${task.title}`,
        onchange: (event) => toggle(task.id, event.target),
      }),
    ),
    h(
      "div",
      { className: "task-main" },
      h("p", { className: "task-title" }, task.title),
      h(
        "p",
        { className: "task-meta" },
        h("span", { className: `badge ${task.priority}` }, PRIORITY_LABELS[task.priority]),
        " · created ",
        h("time", { datetime: task.created_at }, created.toLocaleString("en")),
      ),
    ),
    h(
      "div",
      { className: "task-actions" },
      h("button", { type: "button", "aria-label": `Edit: ${task.title}`, onclick: () => openEditor(task.id) }, "Edit"),
      h(
        "button",
        { type: "button", className: "danger", "aria-label": `Delete: ${task.title}`, onclick: () => remove(task.id) },
        "Delete",
      ),
    ),
  );
}

function show(task, etag) {
  state.tasks.set(task.id, task);
  if (etag) state.etags.set(task.id, etag);
  const current = rowOf(task.id);
  if (!current) return;
  if (matchesFilters(task)) current.replaceWith(row(task));
  else forget(task.id);
}

function forget(id) {
  state.tasks.delete(id);
  state.etags.delete(id);
  rowOf(id)?.remove();
  summary();
}

/**
 * The ETag of the version the person is looking at. Read lazily; if the task changed since the
 * list showed it, the person's view is stale: say so and show the current version instead.
 */
async function etagOfShown(id) {
  const known = state.etags.get(id);
  if (known) return known;
  const shown = state.tasks.get(id);
  const { data, etag } = await getTask(id);
  if (shown && data.updated_at !== shown.updated_at) {
    show(data, etag);
    say(CHANGED_ELSEWHERE, "error");
    return null;
  }
  state.etags.set(id, etag);
  return etag;
}

async function reloadOne(id) {
  try {
    const { data, etag } = await getTask(id);
    show(data, etag);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) forget(id);
  }
}

/** PATCH with If-Match; on 412 the task is reloaded and the person told. */
// A failed update or delete: 412 reloads the task, 404 drops it, anything else is shown.
async function writeFailed(error, id, deletedMessage) {
  if (error instanceof ApiError && error.status === 412) {
    await reloadOne(id);
    say(CHANGED_ELSEWHERE, "error");
  } else if (error instanceof ApiError && error.status === 404) {
    forget(id);
    say(deletedMessage, "error");
  } else {
    say(describeError(error), "error");
  }
}

async function write(id, changes, done) {
  try {
    const etag = await etagOfShown(id);
    if (!etag) return false;
    const { data, etag: next } = await updateTask(id, changes, etag);
    show(data, next);
    say(done(data));
    state.onWrite();
    return true;
  } catch (error) {
    await writeFailed(error, id, "This task was deleted elsewhere.");
    return false;
  }
}

async function toggle(id, checkbox) {
  checkbox.disabled = true;
  const completed = checkbox.checked;
  const ok = await write(id, { completed }, (task) =>
    `Marked “${task.title}” as ${task.completed ? "completed" : "not completed"}.`,
  );
  const fresh = rowOf(id)?.querySelector('input[type="checkbox"]');
  if (!ok && fresh === checkbox) checkbox.checked = !completed;
  if (fresh === checkbox) checkbox.disabled = false;
  fresh?.focus();
}

/** Opens the inline editor on the task as it is now (read with its ETag, which Save sends). */
async function openEditor(id) {
  try {
    const { data, etag } = await getTask(id);
    show(data, etag);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      forget(id);
      say("This task was deleted elsewhere.", "error");
    } else {
      say(describeError(error), "error");
    }
    return;
  }
  const task = state.tasks.get(id);
  const current = rowOf(id);
  if (!task || !current) return;
  const title = h("input", { type: "text", id: `edit-title-${id}`, value: task.title, required: true, maxlength: 255 });
  const priority = h(
    "select",
    { id: `edit-priority-${id}` },
    ...Object.entries(PRIORITY_LABELS).map(([value, label]) =>
      h("option", { value, selected: value === task.priority }, label),
    ),
  );
  const cancel = () => {
    const latest = state.tasks.get(id);
    if (latest) rowOf(id)?.replaceWith(row(latest));
    rowOf(id)?.querySelector("button")?.focus();
  };
  const form = h(
    "form",
    {
      className: "edit-form",
      "aria-label": `Edit task ${task.title}`,
      onsubmit: async (event) => {
        event.preventDefault();
        const changes = {};
        if (title.value !== task.title) changes.title = title.value;
        if (priority.value !== task.priority) changes.priority = priority.value;
        if (!Object.keys(changes).length) return cancel();
        const ok = await write(id, changes, (saved) => `Saved “${saved.title}”.`);
        if (ok) rowOf(id)?.querySelector("button")?.focus();
        else rowOf(id)?.querySelector("button, input")?.focus();
      },
      onkeydown: (event) => {
        if (event.key === "Escape") cancel();
      },
    },
    h("div", { className: "field grow" }, h("label", { for: `edit-title-${id}` }, "Title"), title),
    h("div", { className: "field" }, h("label", { for: `edit-priority-${id}` }, "Priority"), priority),
    h("button", { type: "submit", className: "primary" }, "Save"),
    h("button", { type: "button", onclick: cancel }, "Cancel"),
  );
  const editing = h("li", { className: "task editing", "data-id": id }, form);
  current.replaceWith(editing);
  title.focus();
}

async function remove(id) {
  const task = state.tasks.get(id);
  if (!task) return;
  try {
    const etag = await etagOfShown(id);
    if (!etag) return;
    const next = rowOf(id)?.nextElementSibling;
    await deleteTask(id, etag);
    forget(id);
    say(`Deleted “${task.title}”.`);
    state.onWrite();
    (next?.querySelector("button") || byId("tasks-heading")).focus();
  } catch (error) {
    await writeFailed(error, id, "This task was already deleted elsewhere.");
  }
}

async function create(event) {
  event.preventDefault();
  const form = event.target;
  const button = form.querySelector('button[type="submit"]');
  const title = form.elements.title.value;
  if (!title.trim()) {
    say("A task needs a title.", "error");
    form.elements.title.focus();
    return;
  }
  button.disabled = true;
  try {
    const { data } = await createTask({ title, priority: form.elements.priority.value });
    form.reset();
    say(`Created “${data.title}”.`);
    state.onWrite();
    await reloadList();
  } catch (error) {
    say(describeError(error), "error");
  } finally {
    button.disabled = false;
    form.elements.title.focus();
  }
}

function debounce(fn, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

/** Wires the list; `onWrite` runs after every successful write (the stats panel refreshes). */
export function setUpTasks(onWrite) {
  state.onWrite = onWrite;
  byId("create-form").addEventListener("submit", create);
  const form = byId("filters");
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("change", (event) => {
    if (event.target.name !== "q") reloadList();
  });
  form.elements.q.addEventListener("input", debounce(reloadList, 300));
  byId("load-more").addEventListener("click", loadMore);
}
