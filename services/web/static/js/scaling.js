// The autoscaling panel: GET /api/scaling (stats-api reads the HPAs and Deployments). Outside a
// cluster there is nothing to show, and the panel says so instead of inventing a number.
import { describeError, getScaling } from "./api.js";
import { fill, h } from "./dom.js";

const SERVICES = ["tasks-api", "stats-api"];
const UNKNOWN = "not yet known";
const byId = (id) => document.getElementById(id);

const count = (value) => (value === null || value === undefined ? UNKNOWN : String(value));
const percent = (value) => (value === null || value === undefined ? UNKNOWN : `${value} %`);

function serviceCard(name, figures) {
  const current = figures.current_replicas;
  const max = figures.max_replicas;
  const meter =
    current !== null && max !== null
      ? h("meter", { min: 0, max, value: current, "aria-label": `${name} replicas out of its maximum` })
      : null;
  return h(
    "article",
    { className: "scaling-service", "data-service": name },
    h("h3", {}, name),
    meter,
    h(
      "dl",
      {},
      h("dt", {}, "Replicas"),
      h("dd", { "data-field": "current_replicas" }, count(current)),
      h("dt", {}, "Desired"),
      h("dd", { "data-field": "desired_replicas" }, count(figures.desired_replicas)),
      h("dt", {}, "Ready"),
      h("dd", { "data-field": "ready_replicas" }, count(figures.ready_replicas)),
      h("dt", {}, "Min – max"),
      h("dd", { "data-field": "range" }, `${count(figures.min_replicas)} – ${count(max)}`),
      h("dt", {}, "CPU (HPA)"),
      h(
        "dd",
        { "data-field": "cpu" },
        `${percent(figures.cpu_utilization_percent)} of target ${percent(figures.target_cpu_utilization_percent)}`,
      ),
    ),
  );
}

export async function refreshScaling() {
  const status = byId("scaling-status");
  const list = byId("scaling-services");
  try {
    const { data } = await getScaling();
    if (!data.in_cluster) {
      fill(status, "Not running in Kubernetes: there is no autoscaler to show.");
      fill(list);
      return;
    }
    fill(status, `Namespace ${data.namespace}; refreshed ${new Date().toLocaleTimeString("en")}.`);
    const cards = SERVICES.filter((name) => data.services[name]).map((name) =>
      serviceCard(name, data.services[name]),
    );
    fill(list, cards.length ? cards : h("p", { className: "muted" }, "No autoscaler found yet."));
  } catch (error) {
    fill(status, `Autoscaling data unavailable: ${describeError(error)}`);
    fill(list);
  }
}
