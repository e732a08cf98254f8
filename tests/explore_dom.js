// The report explorer's script run under node (tests/test_report.py) in a DOM just large enough
// for it: elements keep their attributes, children and text, so a test reads what it drew.
// Arguments: the explorer's JSON data and the script; prints the cells' fills, the curve's texts
// and the first cell's numbers.
function El(name) {
  this.name = name; this.attributes = {}; this.children = []; this.textContent = "";
  this.namespaceURI = "http://www.w3.org/2000/svg";
  var classes = {};
  this.classList = {add: function (c) { classes[c] = true; }, remove: function (c) { delete classes[c]; }};
}
El.prototype.setAttribute = function (k, v) { this.attributes[k] = String(v); };
El.prototype.appendChild = function (c) { this.children.push(c); return c; };
El.prototype.removeChild = function (c) { this.children.splice(this.children.indexOf(c), 1); };
Object.defineProperty(El.prototype, "firstChild", {get: function () { return this.children[0] || null; }});
El.prototype.addEventListener = function () {};
var fs = require("fs");
var ids = {"explore-data": new El("script"), "explore-heatmap": new El("svg"),
           "explore-curves": new El("svg"), "explore-numbers": new El("table"),
           "explore-cell": new El("p")};
ids["explore-data"].textContent = fs.readFileSync(process.argv[2], "utf8");
global.document = {getElementById: function (id) { return ids[id] || null; },
                   createElementNS: function (ns, name) { return new El(name); },
                   createElement: function (name) { return new El(name); }};
eval(fs.readFileSync(process.argv[3], "utf8"));
function walk(el, out) { out.push(el); el.children.forEach(function (c) { walk(c, out); }); return out; }
var cells = ids["explore-heatmap"].children.filter(function (e) { return e.name === "g"; })
  .map(function (g) { return g.children[0].attributes.fill; });
var texts = walk(ids["explore-curves"], []).filter(function (e) { return e.name === "text"; })
  .map(function (e) { return e.textContent; });
var numbers = ids["explore-numbers"].children.map(function (tr) {
  return [tr.children[0].textContent, tr.children[1].textContent]; });
process.stdout.write(JSON.stringify({fills: cells, curveTexts: texts, numbers: numbers}));
