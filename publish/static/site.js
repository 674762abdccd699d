/*
 * The search box of the server pages: the release's search index (maps/search.json), the same
 * matching as the map pages (map/search.js); a hit opens the map page its layer is on, centred
 * on it with its feature selected (?at=lat,lon&z=zoom&layer=..&fid=..&label=...).
 */
(function () {
  'use strict';
  document.addEventListener('DOMContentLoaded', function () {
    var form = document.querySelector('.site-search');
    if (!form || !window.GisSearch) { return; }
    var texts = JSON.parse(document.getElementById('site-text').textContent);
    var url = form.getAttribute('data-url'), maps = form.getAttribute('data-maps');
    function t(key, vars) {
      var e = texts[key] || {}, lang = window.GisLang ? window.GisLang.get() : 'ja';
      var s = e[lang] || e.ja || key;
      return s.replace(/\{(\w+)\}/g, function (m, k) {
        return vars && vars[k] !== undefined ? String(vars[k]) : m;
      });
    }
    var input = form.querySelector('input');
    input.setAttribute('placeholder', t('search_placeholder'));
    document.addEventListener('gis-lang', function () {
      input.setAttribute('placeholder', t('search_placeholder'));
    });
    var box = new window.GisSearch.Box(form, {
      url: url, t: t, limit: 8,
      lang: function () { return window.GisLang ? window.GisLang.get() : 'ja'; },
      onPick: function (hit) {
        window.GisSearch.load(url).then(function (idx) {
          var page = (idx.pages || {})[hit.layer];
          if (!page) { return; }
          var z = hit.kind === 'oaza' ? 16 : 18;
          // the map page selects the feature (layer + fid) and shows the label
          window.location.href = maps + page + '?at=' + hit.lat + ',' + hit.lon + '&z=' + z +
            '&layer=' + encodeURIComponent(hit.layer) +
            (hit.fid !== null && hit.fid !== undefined ? '&fid=' + encodeURIComponent(hit.fid) : '') +
            '&label=' + encodeURIComponent(hit.label);
        });
      }
    });
    window.GisSiteSearch = box;
  });
}());
