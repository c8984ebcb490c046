// The statistics panel: GET /api/stats, shown as figures and a per-priority table.
import { describeError, getStats } from "./api.js";
import { fill, h } from "./dom.js";

const PRIORITIES = ["high", "medium", "low"];
const byId = (id) => document.getElementById(id);

export async function refreshStats() {
  try {
    const { data } = await getStats();
    fill(byId("stat-total"), data.total.toLocaleString("en"));
    fill(byId("stat-completed"), data.completed.toLocaleString("en"));
    fill(byId("stat-pending"), data.pending.toLocaleString("en"));
    fill(byId("stat-rate"), `${(data.completion_rate * 100).toFixed(1)} %`);
    const rows = PRIORITIES.map((priority) => {
      const counts = data.by_priority[priority];
      return h(
        "tr",
        { "data-priority": priority },
        h("th", { scope: "row" }, priority[0].toUpperCase() + priority.slice(1)),
        h("td", {}, counts.total.toLocaleString("en")),
        h("td", {}, counts.completed.toLocaleString("en")),
      );
    });
    fill(byId("stats-by-priority"), rows);
    byId("stats-error").hidden = true;
  } catch (error) {
    const message = byId("stats-error");
    fill(message, `Statistics unavailable: ${describeError(error)}`);
    message.hidden = false;
  }
}
