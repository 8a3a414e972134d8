"""The HTML report's inline style and script (self-contained: no network). The script sorts a table
by a clicked header (numbers by `data-sort`, else text) and filters rows by a text box and a verdict
select; it only reads and reorders the page's own rows."""

CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h2{margin-top:2em}
.meta{color:#555;font-size:13px}img{max-width:100%}.case{border-top:1px solid #ccc;padding-top:1em}.bad{color:#b00}
.tools{margin:.5em 0;display:flex;gap:1em;align-items:center;font-size:14px}.tools input{width:22em}
.wrap{max-height:42vh;overflow:auto;border:1px solid #ddd}
table.grid{border-collapse:collapse;font-size:12.5px;width:100%}
table.grid th{position:sticky;top:0;background:#f0f0f0;cursor:pointer;text-align:left;padding:4px 6px;
border-bottom:2px solid #bbb;white-space:nowrap;z-index:1}table.grid th:after{content:" \\2195";color:#aaa}
table.grid td{padding:3px 6px;border-bottom:1px solid #eee;vertical-align:top;overflow-wrap:anywhere;max-width:22em}
table.grid tr:hover td{background:#fafae6}
td.v-conforms{background:#e3f5e1;color:#165a16}td.v-xfail{background:#fff4d6;color:#7a5a00}
td.v-deviates,td.v-xpass,td.v-error{background:#fde0e0;color:#a00;font-weight:bold}
td.v-no-goldens,td.v-unavailable{background:#f6e0f6;color:#707}td.v-n\\/a,td.v-not-installed{color:#999}
.badge{display:inline-block;border-radius:9px;padding:1px 7px;font-size:11.5px}
td.case-id{min-width:16em}
.d-coupled{background:#dbe8fb;color:#123a7a}.d-decoupled-lr{background:#e2f3df;color:#1d5a17}
.d-decoupled-eta{background:#fbe7cf;color:#7a4300}.d-unscaled{background:#f5d9ef;color:#6b145c}
.d-none{background:#eee;color:#666}.d-other{background:#efe6fb;color:#4a1c7a}
.claims{color:#a00;font-weight:bold}code{font-size:12px}"""

SCRIPT = """(function(){
function value(td){var s=td.getAttribute('data-sort');if(s!==null&&s!==''&&!isNaN(+s))return +s;return td.textContent.trim().toLowerCase();}
document.querySelectorAll('table.grid').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th,col){th.addEventListener('click',function(){
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows),up=th.getAttribute('data-dir')!=='up';
    table.querySelectorAll('th').forEach(function(h){h.removeAttribute('data-dir');});th.setAttribute('data-dir',up?'up':'down');
    rows.sort(function(a,b){var x=value(a.cells[col]),y=value(b.cells[col]);
      if(typeof x!==typeof y){x=String(x);y=String(y);}return (x<y?-1:x>y?1:0)*(up?1:-1);});
    rows.forEach(function(r){body.appendChild(r);});});});});
document.querySelectorAll('.tools').forEach(function(tools){
  var table=document.getElementById(tools.getAttribute('data-table')),text=tools.querySelector('input'),pick=tools.querySelector('select'),count=tools.querySelector('.count');
  function apply(){var q=text.value.trim().toLowerCase(),v=pick?pick.value:'',shown=0;
    Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
      var ok=(!q||r.textContent.toLowerCase().indexOf(q)>=0)&&(!v||(' '+r.getAttribute('data-verdicts')+' ').indexOf(' '+v+' ')>=0);
      r.style.display=ok?'':'none';if(ok)shown++;});
    count.textContent=shown+' of '+table.tBodies[0].rows.length+' rows';}
  text.addEventListener('input',apply);if(pick)pick.addEventListener('change',apply);apply();});
})();"""
