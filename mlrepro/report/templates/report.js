// mlrepro report: sortable, filterable results table (tablesort) and Vega-Lite charts (vega-embed).
// Loaded inline after the vendored libraries; reads the chart specs from <script type="application/json">.
(function () {
  "use strict";
  var table = document.getElementById("results");
  if (table && table.tBodies.length) {
    new Tablesort(table);
    var text = document.getElementById("filter-text");
    var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
    var count = document.getElementById("shown-count");
    var apply = function () {
      var needle = text.value.trim().toLowerCase();
      var shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var ok = !needle || row.textContent.toLowerCase().indexOf(needle) !== -1;
        selects.forEach(function (s) {
          if (s.value && row.getAttribute("data-" + s.getAttribute("data-filter")) !== s.value) { ok = false; }
        });
        row.hidden = !ok;
        if (ok) { shown += 1; }
      });
      count.textContent = String(shown);
    };
    text.addEventListener("input", apply);
    selects.forEach(function (s) { s.addEventListener("change", apply); });
  }
  var specs = JSON.parse(document.getElementById("chart-specs").textContent);
  var options = {renderer: "svg", actions: {export: true, source: false, compiled: false, editor: false}};
  var jobs = specs.map(function (item) {
    var el = document.getElementById("chart-" + item.id);
    return vegaEmbed(el, item.spec, options).catch(function (err) {
      el.textContent = "chart not drawn: " + err;
      throw err;
    });
  });
  Promise.all(jobs).then(function () {
    document.body.setAttribute("data-charts-rendered", String(jobs.length));
  }, function (err) {
    console.error("mlrepro report: a chart failed: " + err);
  });
})();
