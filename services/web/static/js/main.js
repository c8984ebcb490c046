// Entry point: wires the panels, refreshes them periodically, and shows a banner while the APIs
// cannot be reached; when they answer again the page reloads its data by itself.
import { onConnectivity } from "./api.js";
import { fill } from "./dom.js";
import { refreshScaling } from "./scaling.js";
import { refreshStats } from "./stats.js";
import { reloadList, setUpTasks } from "./tasks.js";

const STATS_EVERY_MS = 5000;
const SCALING_EVERY_MS = 3000;

let offline = false;

onConnectivity((online, detail) => {
  const banner = document.getElementById("offline-banner");
  if (!online) {
    if (detail) fill(document.getElementById("offline-detail"), `${detail} Retrying every few seconds.`);
    banner.hidden = false;
    offline = true;
  } else if (offline) {
    offline = false;
    banner.hidden = true;
    // Back: whatever failed while away is loaded again.
    reloadList();
    refreshStats();
    refreshScaling();
  }
});

window.addEventListener("online", () => refreshStats());

setUpTasks(() => refreshStats());
reloadList();
refreshStats();
refreshScaling();
setInterval(refreshStats, STATS_EVERY_MS);
setInterval(refreshScaling, SCALING_EVERY_MS);
