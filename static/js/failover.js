// Management > Failover: show only the schedule fields that apply, and follow a
// running sync live without reloading the page.
(function () {
  "use strict";

  function showIntervalFields() {
    var select = document.getElementById("id_sync_interval");
    if (!select) return;
    document.querySelectorAll(".interval-field").forEach(function (field) {
      var applies = field.dataset.interval.split(" ").indexOf(select.value) !== -1;
      field.classList.toggle("d-none", !applies);
    });
  }

  function formatBytes(bytes) {
    var units = ["bytes", "KB", "MB", "GB"];
    var value = bytes;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
  }

  function describe(live) {
    var parts = [live.phase + ":", live.records + (live.expected ? " of " + live.expected : "") + " records",
      formatBytes(live.bytes), formatBytes(live.rate) + "/s"];
    if (live.files) parts.push(live.files + " files");
    if (live.seconds_left !== null && live.seconds_left !== undefined) parts.push("about " + live.seconds_left + " s left");
    return parts.join(", ");
  }

  function plural(count, word) {
    return count + " " + word + (count === 1 ? "" : "s");
  }

  function badge(colour, text) {
    var span = document.createElement("span");
    span.className = "badge text-bg-" + colour;
    span.textContent = text;
    return span;
  }

  // The replication lag, as the page first rendered it (failover/_lag.html), kept live.
  function showLag(lag) {
    var box = document.querySelector("[data-testid=replication-lag]");
    if (!box || !lag) return;
    var parts = [];
    if (lag.changes_behind === null) {
      parts = [badge("secondary", "not known yet"), lag.error ? " " + lag.error : ""];
    } else if (!lag.connected) {
      parts = [badge("danger", "not connected"), " since " + (lag.last_contact || "never") + "; " +
        plural(lag.changes_behind, "change") + " behind when last heard" + (lag.error ? ": " + lag.error : "")];
    } else if (lag.changes_behind === 0) {
      parts = [badge("success", "in step"), " with the " + (box.dataset.role === "backup" ? "primary" : "backup")];
    } else {
      parts = [badge("warning", plural(lag.changes_behind, "change") + ", " +
        Number(lag.seconds_behind || 0).toFixed(1) + " s behind")];
    }
    box.replaceChildren.apply(box, parts);
  }

  function followLag() {
    var box = document.querySelector("[data-testid=replication-lag]");
    var live = document.getElementById("sync-live");
    if (!box || live) return;  // a backup's page follows it with its sync progress
    function poll() {
      fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (data) { showLag(data.lag); window.setTimeout(poll, 1000); })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    poll();
  }

  function followSync() {
    var box = document.getElementById("sync-live");
    if (!box) return;
    var bar = box.querySelector(".progress");
    var fill = box.querySelector(".progress-bar");
    var text = box.querySelector("[data-testid=sync-progress-text]");
    var wasActive = false;

    function poll() {
      fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          showLag(data.lag);
          var run = data.run;
          var active = run && (run.status === "running" || run.status === "pending");
          if (active) {
            var live = data.live;
            bar.classList.remove("d-none");
            if (live && live.expected) {
              fill.style.width = Math.min(100, Math.round((100 * live.records) / live.expected)) + "%";
            }
            text.textContent = "Sync #" + run.id + " " + run.status + (live ? " — " + describe(live) : "");
          } else if (wasActive) {
            window.location.reload();  // show the finished run in the history
            return;
          }
          wasActive = active;
          window.setTimeout(poll, active || data.lag ? 1000 : 5000);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_sync_interval");
    if (select) select.addEventListener("change", showIntervalFields);
    showIntervalFields();
    followSync();
    followLag();
  });
})();
