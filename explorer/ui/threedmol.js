// 3Dmol.js views of crystal structures (one view, or a grid of views sharing one WebGL canvas).
// 3Dmol is loaded once per page from the local static route (model.lib_url); when that fails (Jupyter, or
// `panel serve` without --static-dirs) the Python side sends the library text over the websocket/comm.

const STYLE = {sphere: {scale: 0.32, colorscheme: "Jmol"}, stick: {radius: 0.12, colorscheme: "Jmol"}}
// colours that stand apart from each other and from white, for elements whose Jmol colours look alike (Ta and W
// are both blue there)
const DISTINCT = [0xe6194b, 0x3cb44b, 0xffb000, 0x4363d8, 0xf58231, 0x911eb4, 0x42d4f4, 0xf032e6, 0x9a6324,
                  0x469990, 0x800000, 0x000075, 0x808000, 0xaaaaaa]

function rgb(c) { return [(c >> 16) & 255, (c >> 8) & 255, c & 255] }
function near(a, b) { const [x, y] = [rgb(a), rgb(b)]; return Math.hypot(x[0] - y[0], x[1] - y[1], x[2] - y[2]) < 90 }

// Jmol colours for the elements of one structure, with look-alikes replaced so that every element of it is told
// apart at a glance (the legend shows the same colours)
function elementColors(lib, elements) {
  const jmol = lib.elementColors.Jmol
  const map = {}
  for (const e of [...new Set(elements)].sort()) {
    let c = jmol[e] ?? 0xff1493
    if (Object.values(map).some((u) => near(u, c))) {
      c = DISTINCT.find((d) => !Object.values(map).some((u) => near(u, d))) ?? c
    }
    map[e] = c
  }
  return map
}

function styleWith(map) {
  const scheme = {prop: "elem", map: map}
  return {sphere: {scale: 0.32, colorscheme: scheme}, stick: {radius: 0.12, colorscheme: scheme}}
}

function addScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script")
    const amd = window.define
    if (amd && amd.amd) { window.define = undefined }  // 3Dmol is UMD: make it set window.$3Dmol
    const restore = () => { if (amd && amd.amd) { window.define = amd } }
    script.onload = () => {
      restore()
      if (window.$3Dmol) { resolve(window.$3Dmol) } else { reject(new Error("3Dmol did not load")) }
    }
    script.onerror = () => { restore(); script.remove(); reject(new Error("cannot load " + src)) }
    script.src = src
    document.head.appendChild(script)
  })
}

function fromPython(model) {
  return new Promise((resolve, reject) => {
    const handler = (msg) => {
      if (!msg || msg.type !== "lib") { return }
      model.off("msg:custom", handler)
      if (!msg.source) { reject(new Error(msg.error || "3Dmol.js is not installed")); return }
      const url = URL.createObjectURL(new Blob([msg.source], {type: "text/javascript"}))
      addScript(url).then(resolve, reject)
    }
    model.on("msg:custom", handler)
    model.send_msg({type: "need_lib"})
  })
}

function load3Dmol(model) {
  if (window.$3Dmol) { return Promise.resolve(window.$3Dmol) }
  if (!window.__explorer3dmolPromise) {
    const first = model.lib_url ? addScript(model.lib_url) : Promise.reject(new Error("no static route"))
    window.__explorer3dmolPromise = first.catch(() => fromPython(model))
    window.__explorer3dmolPromise.catch(() => { window.__explorer3dmolPromise = null })
  }
  return window.__explorer3dmolPromise
}

// a two-atom cell drawn once in every view of a fresh grid, so that WebGL compiles its shaders while the page
// waits for the first candidates instead of after they arrive (software WebGL: seconds)
const WARM_CIF = `data_warm
_cell_length_a 3.0
_cell_length_b 3.0
_cell_length_c 3.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na1 Na 0.0 0.0 0.0
Cl1 Cl 0.5 0.5 0.5
`

function hex(color) { return "#" + (color >>> 0).toString(16).padStart(6, "0") }

function registry() {
  if (!window.__explorer3d) { window.__explorer3d = {} }
  return window.__explorer3d
}

export function render({model, el}) {
  const root = document.createElement("div")
  root.className = "x3d-root"
  root.innerHTML = `
    <style>
      .x3d-root { position: relative; width: 100%; height: 100%; display: flex; flex-direction: column;
                  font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
      .x3d-stage { position: relative; flex: 1 1 auto; min-height: 60px; border-radius: 6px; overflow: hidden;
                   background: #fff; border: 1px solid #e3e6ea; }
      .x3d-canvas { position: absolute; inset: 0; }
      .x3d-overlay { position: absolute; inset: 0; display: grid; pointer-events: none; }
      .x3d-cell { position: relative; border: 1px solid #eef0f3; box-sizing: border-box; }
      .x3d-cell.sel { border: 2px solid #0072B5; }
      .x3d-cap { position: absolute; left: 4px; top: 2px; font-size: 11px; color: #333; background: rgba(255,255,255,.8);
                 padding: 0 3px; border-radius: 3px; white-space: nowrap; max-width: calc(100% - 10px);
                 overflow: hidden; text-overflow: ellipsis; }
      .x3d-cap.bad { color: #b00020; }
      .x3d-legend { display: flex; flex-wrap: wrap; gap: 4px 10px; padding: 4px 2px 0 2px; font-size: 12px; color: #333; }
      .x3d-chip { display: inline-flex; align-items: center; gap: 4px; }
      .x3d-dot { width: 11px; height: 11px; border-radius: 50%; border: 1px solid #888; display: inline-block; }
      .x3d-msg { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
                 color: #777; font-size: 13px; text-align: center; padding: 8px; }
    </style>
    <div class="x3d-stage"><div class="x3d-canvas"></div><div class="x3d-overlay"></div><div class="x3d-msg"></div></div>
    <div class="x3d-legend"></div>`
  const stage = root.querySelector(".x3d-stage")
  const holder = root.querySelector(".x3d-canvas")
  const overlay = root.querySelector(".x3d-overlay")
  const message = root.querySelector(".x3d-msg")
  const legend = root.querySelector(".x3d-legend")
  const state = {lib: null, viewers: [], rows: 0, cols: 0, canvas: null, drawn: 0, version: 0, root: root}
  const key = model.view_id || ("view-" + Math.random().toString(36).slice(2))
  registry()[key] = state

  function layout(n) {
    if (n <= 1) { return [1, 1] }
    const cols = Math.min(model.max_cols, Math.ceil(Math.sqrt(n)))
    return [Math.ceil(n / cols), cols]
  }

  function dropCanvas() {
    if (state.canvas) {
      const gl = state.canvas.getContext("webgl2") || state.canvas.getContext("webgl")
      const lose = gl && gl.getExtension("WEBGL_lose_context")
      if (lose) { lose.loseContext() }
    }
    holder.innerHTML = ""
    state.viewers = []
    state.canvas = null
  }

  function build(rows, cols) {
    dropCanvas()
    const $3Dmol = state.lib
    const config = {backgroundColor: "white", antialias: true}
    if (rows * cols === 1) {
      state.viewers = [$3Dmol.createViewer(holder, config)]
    } else {
      const grid = $3Dmol.createViewerGrid(holder, {rows: rows, cols: cols, control_all: false}, config)
      // createViewerGrid returns rows bottom-up; put them top-down, row-major
      state.viewers = grid.slice().reverse().flat()
    }
    state.canvas = holder.querySelector("canvas")
    state.rows = rows
    state.cols = cols
  }

  // 3Dmol redraws a view after clear(), zoomTo(), zoom() and resize() — in a grid, each redraw is also copied
  // to the page (seconds for 16 views on software WebGL): prepare quietly, then draw once with render()
  function quietly(viewer, work) {
    viewer.show = () => {}
    try { return work() } finally { delete viewer.show }
  }

  function fit(viewer) {
    viewer.zoomTo()
    viewer.zoom(0.8)  // a margin: zoomTo fits the atom centres, not the spheres
  }

  function drawOne(viewer, item) {
    const elements = quietly(viewer, () => {
      viewer.clear()
      if (!item || !item.cif) { return [] }
      const m = viewer.addModel(item.cif, "cif")
      viewer.setStyle({}, STYLE)
      viewer.addUnitCell(m, {box: {color: "#555"}, astyle: {hidden: true}, bstyle: {hidden: true},
                             cstyle: {hidden: true}, alabel: "", blabel: "", clabel: ""})
      const n = Math.max(1, model.supercell)
      viewer.replicateUnitCell(n, n, n, m)
      const elements = m.selectedAtoms({}).map((a) => a.elem)
      viewer.setStyle({}, styleWith(elementColors(state.lib, elements)))
      fit(viewer)
      return elements
    })
    viewer.render()
    return elements
  }

  function prewarm() {
    if (!model.prewarm || state.canvas) { return }
    const started = performance.now()
    const [rows, cols] = layout(model.prewarm)
    build(rows, cols)
    for (const viewer of state.viewers) { drawOne(viewer, {cif: WARM_CIF}) }
    for (const viewer of state.viewers) { drawOne(viewer, null) }
    state.prewarm_ms = performance.now() - started
  }

  function drawLegend(elements) {
    const colors = elementColors(state.lib, elements)
    const unique = [...new Set(elements)].sort()
    legend.style.display = model.legend && unique.length ? "flex" : "none"
    legend.innerHTML = unique.map((e) => `<span class="x3d-chip"><span class="x3d-dot" style="background:${hex(colors[e] ?? 0xff1493)}"></span>${e}</span>`).join("")
  }

  function drawOverlay() {
    overlay.style.gridTemplateRows = `repeat(${state.rows}, 1fr)`
    overlay.style.gridTemplateColumns = `repeat(${state.cols}, 1fr)`
    const items = model.items || []
    const multi = state.rows * state.cols > 1
    overlay.innerHTML = ""
    for (let i = 0; i < state.rows * state.cols; i++) {
      const cell = document.createElement("div")
      cell.className = "x3d-cell" + (multi && i === model.selected ? " sel" : "")
      if (!multi) { cell.style.border = "none" }
      const item = items[i]
      if (item && item.label) {
        const cap = document.createElement("span")
        cap.className = "x3d-cap" + (item.bad ? " bad" : "")
        cap.textContent = item.label
        cell.appendChild(cap)
      }
      overlay.appendChild(cell)
    }
  }

  function draw() {
    if (!state.lib) { return }
    const items = model.items || []
    const received = performance.now()
    state.version += 1
    if (!items.length) {
      if (state.canvas) {  // keep the canvas (and its compiled shaders) for the next items
        for (const viewer of state.viewers) { drawOne(viewer, null) }
      } else if (model.prewarm) {  // when the page is idle, not while it is still being built
        const idle = window.requestIdleCallback || ((f) => setTimeout(f, 200))
        idle(() => { if (!(model.items || []).length) { prewarm() } }, {timeout: 3000})
      }
      overlay.innerHTML = ""
      legend.innerHTML = ""
      message.textContent = model.placeholder
      state.drawn = 0
      root.dataset.drawn = "0"
      if (model.drawn !== 0) { model.drawn = 0 }
      return
    }
    message.textContent = ""
    const [rows, cols] = layout(items.length)
    if (rows !== state.rows || cols !== state.cols || !state.canvas) { build(rows, cols) }
    const built = performance.now()
    let elements = []
    state.viewers.forEach((viewer, i) => { elements = elements.concat(drawOne(viewer, items[i])) })
    // performance.now() marks of the last draw (ms): items arrived, canvas ready, all views rendered
    state.timing = {received: received, built: built, rendered: performance.now()}
    drawLegend(elements)
    drawOverlay()
    state.size = holder.clientWidth + "x" + holder.clientHeight
    state.drawn = items.length
    root.dataset.drawn = String(items.length)
    if (model.drawn !== items.length) { model.drawn = items.length }
  }

  function resize() {
    if (!state.canvas) { return }
    const size = holder.clientWidth + "x" + holder.clientHeight
    if (size === state.size) { return }
    state.size = size
    for (const viewer of state.viewers) { quietly(viewer, () => viewer.resize()) }
    for (const viewer of state.viewers) {
      quietly(viewer, () => fit(viewer))
      viewer.render()
    }
  }

  // layout passes come in bursts (table filled, progress bar hidden, ...): resize once per frame
  let resizeQueued = false
  function queueResize() {
    if (resizeQueued) { return }
    resizeQueued = true
    requestAnimationFrame(() => { resizeQueued = false; resize() })
  }

  // a click that is not a drag selects the cell under the pointer
  let down = null
  stage.addEventListener("pointerdown", (e) => { down = [e.clientX, e.clientY] })
  stage.addEventListener("pointerup", (e) => {
    if (!down || Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 4) { down = null; return }
    down = null
    const box = stage.getBoundingClientRect()
    const col = Math.floor((e.clientX - box.left) / (box.width / Math.max(1, state.cols)))
    const row = Math.floor((e.clientY - box.top) / (box.height / Math.max(1, state.rows)))
    const index = row * state.cols + col
    if (index >= 0 && index < (model.items || []).length) { model.send_msg({type: "click", index: index}) }
  })

  model.on(["items", "supercell", "legend"], draw)
  model.on("selected", drawOverlay)
  model.on("after_layout", queueResize)
  model.on("resize", queueResize)
  model.on("remove", () => { dropCanvas(); delete registry()[key] })

  message.textContent = "loading 3Dmol.js …"
  load3Dmol(model).then((lib) => {
    state.lib = lib
    // the container has its size only once it is attached to the page
    const start = () => {
      if (holder.clientWidth > 0 && holder.clientHeight > 0) { draw() } else { requestAnimationFrame(start) }
    }
    start()
  }).catch((err) => {
    message.textContent = "3D view unavailable: " + err.message
    state.error = String(err.message)
  })
  return root
}
