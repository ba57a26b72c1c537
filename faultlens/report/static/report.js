/* faultlens report: lazy Plotly rendering, heat-map selectors and pane switches. No network. */
(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("fl-figs").textContent);
  var config = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud", "select2d", "lasso2d"]};
  var drawn = {};

  function decodeFrame(stack, i) {
    var f = stack.frames[i];
    if (stack.encoding === "raw") return f;
    var bin = atob(f), rows = stack.rows, cols = stack.cols, z = new Array(rows);
    for (var r = 0; r < rows; r++) {
      var row = new Array(cols);
      for (var c = 0; c < cols; c++) { var b = bin.charCodeAt(r * cols + c) / 255; row[c] = b * b; }
      z[r] = row;
    }
    return z;
  }

  function draw(el) {
    var id = el.getAttribute("data-fig");
    if (drawn[id]) return;
    var spec = specs[id];
    if (!spec) return;
    drawn[id] = true;
    el.innerHTML = "";
    // Fix the container height: with responsive sizing, a later relayout (the selectors')
    // would otherwise shrink the figure to the container's CSS min-height.
    if (spec.layout && spec.layout.height) el.style.height = spec.layout.height + "px";
    Plotly.newPlot(el, spec.data, spec.layout, config);
    el.setAttribute("data-frame", "0");
  }

  function frameIndex(id) {
    var spec = specs[id], idx = 0;
    spec.stack.dims.forEach(function (d, k) {
      var sel = document.querySelector('select.fl-stack[data-fig="' + id + '"][data-dim="' + k + '"]');
      idx = idx * d.labels.length + (sel ? sel.selectedIndex : 0);
    });
    return idx;
  }

  function showFrame(id) {
    var el = document.getElementById(id), spec = specs[id];
    if (!el || !spec || !spec.stack) return;
    draw(el);
    var i = frameIndex(id);
    Plotly.restyle(el, {z: [decodeFrame(spec.stack, i)]}, [0]);
    if (spec.stack.titles && spec.stack.titles[i]) Plotly.relayout(el, {"title.text": spec.stack.titles[i]});
    el.setAttribute("data-frame", String(i));
  }

  function showPane(group, key) {
    document.querySelectorAll('.fl-pane[data-switch="' + group + '"]').forEach(function (p) {
      var on = p.getAttribute("data-key") === key;
      p.classList.toggle("shown", on);
      if (on) p.querySelectorAll(".fl-plot").forEach(function (el) {
        if (drawn[el.getAttribute("data-fig")] && el.offsetParent) Plotly.Plots.resize(el);
      });
    });
  }

  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (t.matches("select.fl-stack")) showFrame(t.getAttribute("data-fig"));
    else if (t.matches("select.fl-switch")) showPane(t.getAttribute("data-switch"), t.value);
  });
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button");
    if (!b) return;
    if (b.classList.contains("step")) {
      var sel = document.querySelector('select.fl-stack[data-fig="' + b.getAttribute("data-fig") + '"][data-dim="' + b.getAttribute("data-dim") + '"]');
      var n = sel.options.length;
      sel.selectedIndex = (sel.selectedIndex + parseInt(b.getAttribute("data-step"), 10) + n) % n;
      showFrame(b.getAttribute("data-fig"));
      return;
    }
    var box = b.closest(".fl-switch");
    if (box && b.hasAttribute("data-key")) {
      box.querySelectorAll("button[data-key]").forEach(function (x) { x.classList.toggle("on", x === b); });
      showPane(box.getAttribute("data-switch"), b.getAttribute("data-key"));
    }
  });
  // A summary link may point into another run's tab: open that tab first.
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest('a[href^="#"]');
    if (!a) return;
    var target = document.getElementById(a.getAttribute("href").slice(1));
    var pane = target && target.closest('.fl-pane[data-switch="runs"]');
    if (pane && !pane.classList.contains("shown")) {
      var btn = document.querySelector('.tabs button[data-key="' + pane.getAttribute("data-key") + '"]');
      if (btn) btn.click();
    }
  });

  var plots = document.querySelectorAll(".fl-plot");
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) { draw(e.target); io.unobserve(e.target); } });
    }, {rootMargin: "400px"});
    plots.forEach(function (el) { io.observe(el); });
  } else {
    plots.forEach(draw);
  }
  window.faultlensReport = {draw: draw, showFrame: showFrame, specs: specs};
})();
