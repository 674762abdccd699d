/*
 * The one search of every page: 大字 + 地番, addresses and place names, from the release's
 * search index (maps/search.json, built at publish by publish/build/search_index.py).
 *
 * The matching rules are the Python reference's (search_index.fold / parse / search), so a query
 * finds the same hits, in the same order, on the page and in the tests: NFKC, one hyphen, no
 * spaces; 漢数字 before 丁目/番地/番/号/の become digits; ヶ/ケ/ヵ after a kanji are one letter;
 * 大字 variants and readings (kana) from the city's config; 地番 in any ledger spelling; the
 * city's address prefixes dropped. Ranked: exact, prefix, substring; 大字 and parcels before
 * places; a parcel with its 大字 before one found by 地番 alone; shorter labels first.
 *
 * The box is a combobox (WAI-ARIA 1.2): type, ArrowDown/ArrowUp move through the hits, Enter
 * picks, Escape closes. The index (a few hundred kB) loads on first focus, then everything is
 * local: searching costs the server nothing.
 */
(function (global) {
  'use strict';

  var HYPHENS = /[\u02d7\u2010-\u2015\u2043\u2212\u2500\u2501\ufe58\ufe63\uff0d]/g;
  var CHOON = /(?<=[0-9A-Za-z])\u30fc(?=[0-9A-Za-z])/g;
  var INVISIBLE = /[\u200b\u200c\u200d\u2060\ufeff]/g;
  var KANJI_DIGITS = {'〇': 0, '零': 0, '一': 1, '二': 2, '三': 3, '四': 4, '五': 5, '六': 6,
    '七': 7, '八': 8, '九': 9};
  var KANJI_UNITS = {'十': 10, '百': 100, '千': 1000};
  var KANJI_NUM = /([〇零一二三四五六七八九十百千]+)(?=丁目|番地|番|号|の|-|$)/g;
  var KE = /(?<=[\u4e00-\u9fff々])[ヶケヵカゖゕ](?![\u30a1-\u30faー])/g;
  var CHIBAN_TAIL = /[0-9甲乙丙丁][0-9\-番地のノ之号甲乙丙丁]*$/;
  var CHIBAN_SPECIAL = /^(?:地区外|区域外|別図|不明|不詳|未定|番外|無番|無地番)/;
  var CHIBAN_SEP = /(?<=\d)(?:番地の?|番の?|の|ノ|之|-)(?=\d)/g;
  var CHIBAN_END = /(?<=\d)(?:番地|番)$/;
  var CHIBAN_RE = /^([\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff々〆]{0,10})(\d+(?:-\d+)*)$/;

  /** etl.normalize's nfkc: NFKC, one hyphen, no invisible characters, single spaces. */
  function nfkc(s) {
    return String(s).normalize('NFKC').replace(HYPHENS, '-').replace(CHOON, '-')
      .replace(INVISIBLE, '').replace(/\s+/g, ' ').trim();
  }

  function kanjiNumber(s) {
    if (!s) { return null; }
    var chars = Array.from(s);
    if (chars.every(function (c) { return c in KANJI_DIGITS; })) {
      return Number(chars.map(function (c) { return KANJI_DIGITS[c]; }).join(''));
    }
    var total = 0, cur = 0;
    for (var i = 0; i < chars.length; i++) {
      var c = chars[i];
      if (c in KANJI_DIGITS) { cur = KANJI_DIGITS[c]; } else if (c in KANJI_UNITS) {
        total += (cur || 1) * KANJI_UNITS[c];
        cur = 0;
      } else { return null; }
    }
    return total + cur;
  }

  /** The matching form of a name or query (search_index.fold). */
  function fold(text) {
    var s = nfkc(text === null || text === undefined ? '' : text).replace(/ /g, '');
    s = s.replace(KANJI_NUM, function (m, k) {
      var n = kanjiNumber(k);
      return n === null ? k : String(n);
    });
    return s.replace(KE, 'ケ');
  }

  /** Katakana -> hiragana (readings are compared in hiragana). */
  function hira(s) {
    return Array.from(s).map(function (c) {
      return c >= 'ァ' && c <= 'ヶ' ? String.fromCharCode(c.charCodeAt(0) - 0x60) : c;
    }).join('');
  }

  /** A 地番 in the ledger's canonical form ("123番4" -> "123-4"), or null. */
  function chibanKey(text) {
    var s = nfkc(text).replace(/ /g, '');
    if (!s || CHIBAN_SPECIAL.test(s)) { return null; }
    s = s.replace(CHIBAN_SEP, '-').replace(CHIBAN_END, '');
    var m = CHIBAN_RE.exec(s);
    if (!m) { return null; }
    return m[1] + m[2].split('-').map(function (p) { return String(Number(p)); }).join('-');
  }

  function len(s) { return Array.from(s).length; }

  /** The query split into its 大字 (canonical key or null) and the rest (parse). */
  function parse(index, query) {
    var q = fold(query);
    var prefixes = index.prefixes || [];
    for (var i = 0; i < prefixes.length; i++) {
      var p = prefixes[i];
      if (q.indexOf(p) === 0 && q.length > p.length) { q = q.slice(p.length); break; }
    }
    var best = null;
    var names = {};
    index.oaza.forEach(function (e) { names[e.k] = e.k; });
    [[names, false], [index.variants || {}, false], [index.readings || {}, true]]
      .forEach(function (pair) {
        var table = pair[0], probe = pair[1] ? hira(q) : q;
        Object.keys(table).forEach(function (k) {
          if (k && probe.indexOf(k) === 0 && (best === null || k.length > best[0])) {
            best = [k.length, table[k]];
          }
        });
      });
    var oaza = best ? best[1] : null;
    var rest = best ? q.slice(best[0]) : q;
    var m = rest ? CHIBAN_TAIL.exec(rest) : null;
    var ch = rest && m && m.index === 0 ? chibanKey(rest) : null;
    return {text: q, oaza: oaza, rest: rest, chiban: ch};
  }

  function match(key, q) {
    if (!key || !q) { return null; }
    if (key === q) { return 0; }
    if (key.indexOf(q) === 0) { return 1; }
    if (key.indexOf(q) >= 0) { return 2; }
    return null;
  }

  function cmp(a, b) {
    for (var i = 0; i < a.score.length; i++) {
      if (a.score[i] !== b.score[i]) { return a.score[i] - b.score[i]; }
    }
    return a.label < b.label ? -1 : a.label > b.label ? 1 : 0;
  }

  /** Ranked hits (search_index.search): {kind, label, lon, lat, layer, fid, score}. */
  function search(index, query, limit) {
    var pq = parse(index, query);
    if (!pq.text) { return []; }
    var hits = [];
    var parcelQuery = pq.chiban !== null;
    index.oaza.forEach(function (e) {
      if (pq.oaza !== null && e.k !== pq.oaza) { return; }
      if (pq.oaza === null && !parcelQuery) {
        var lvl = match(e.k, pq.text);
        if (lvl !== null) {
          hits.push({kind: 'oaza', label: e.n, lon: e.c[0], lat: e.c[1], layer: e.layer,
            fid: null, score: [lvl, 0, len(e.n)], en: e.en || null});
        }
        return;
      }
      if (!pq.rest) {
        hits.push({kind: 'oaza', label: e.n, lon: e.c[0], lat: e.c[1], layer: e.layer,
          fid: null, score: [0, 0, len(e.n)], en: e.en || null});
        return;
      }
      if (pq.chiban === null) { return; }
      for (var i = 0; i < e.ch.length; i++) {
        var ch = e.ch[i], l;
        if (ch === pq.chiban) { l = 0; } else if (ch.indexOf(pq.chiban + '-') === 0) {
          l = 1;
        } else { continue; }
        var label = e.n + ' ' + ch;
        hits.push({kind: 'parcel', label: label, lon: e.x[i], lat: e.y[i], layer: e.layer,
          fid: e.id[i], score: [l + (pq.oaza ? 0 : 2), 0, len(label)],
          en: e.en ? e.en + ' ' + ch : null});
      }
    });
    index.places.forEach(function (p) {
      var lvl = match(p.k, pq.text), kind = 'place';
      if (lvl === null && p.ak) { lvl = match(p.ak, pq.text); kind = 'address'; }
      if (lvl === null) { return; }
      var label = kind === 'place' ? p.n : p.n + ' (' + p.a + ')';
      hits.push({kind: kind, label: label, lon: p.c[0], lat: p.c[1], layer: p.layer,
        fid: p.id, score: [lvl, 1, len(label)], en: null});
    });
    hits.sort(cmp);
    return hits.slice(0, limit || 10);
  }

  var cache = {};
  /** The index at ``url``, fetched once per page. */
  function load(url) {
    if (!cache[url]) {
      cache[url] = fetch(url, {credentials: 'same-origin'}).then(function (r) {
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.json();
      });
    }
    return cache[url];
  }

  var seq = 0;

  /**
   * A search box in ``form`` (role=search): ``opts.url`` of the index, ``opts.t(key, vars)`` the
   * page's texts in its current language, ``opts.onPick(hit)`` when a hit is chosen.
   */
  function Box(form, opts) {
    var self = this;
    this.opts = opts;
    this.id = 'gs' + (++seq);
    this.form = form;
    this.input = form.querySelector('input');
    this.list = form.querySelector('[role=listbox]');
    this.status = form.querySelector('[role=status]');
    this.hits = [];
    this.active = -1;
    this.index = null;
    this.input.setAttribute('role', 'combobox');
    this.input.setAttribute('aria-autocomplete', 'list');
    this.input.setAttribute('aria-expanded', 'false');
    this.input.setAttribute('aria-controls', this.list.id);
    this.input.addEventListener('focus', function () { self.ensure(); });
    this.input.addEventListener('input', function () { self.update(); });
    this.input.addEventListener('keydown', function (e) { self.key(e); });
    this.form.addEventListener('submit', function (e) {
      e.preventDefault();
      self.pick(self.active >= 0 ? self.active : 0);
    });
    this.list.addEventListener('mousedown', function (e) { e.preventDefault(); });
    this.list.addEventListener('click', function (e) {
      var li = e.target.closest('[role=option]');
      if (li) { self.pick(Number(li.getAttribute('data-i'))); }
    });
    this.input.addEventListener('blur', function () {
      window.setTimeout(function () { self.close(); }, 150);
    });
  }

  Box.prototype.ensure = function () {
    var self = this;
    if (this.loading) { return this.loading; }
    this.say('search_loading');
    this.loading = load(this.opts.url).then(function (idx) {
      self.index = idx;
      self.say(null);
      self.update();
      return idx;
    }, function () {  // tried again on the next focus (a phone back in coverage)
      delete cache[self.opts.url];
      self.loading = null;
      self.say('search_error');
    });
    return this.loading;
  };

  Box.prototype.say = function (key, vars) {
    if (this.status) { this.status.textContent = key ? this.opts.t(key, vars) : ''; }
  };

  Box.prototype.kindText = function (hit) {
    return this.opts.t('search_kind_' + hit.kind);
  };

  Box.prototype.update = function () {
    var q = this.input.value;
    if (!this.index) { return; }
    this.hits = q.trim() ? search(this.index, q, this.opts.limit || 8) : [];
    this.active = this.hits.length ? 0 : -1;
    this.render();
    if (q.trim() && !this.hits.length) { this.say('search_none', {q: q.trim()}); } else {
      this.say(this.hits.length ? 'search_count' : null, {n: this.hits.length});
    }
  };

  Box.prototype.render = function () {
    var self = this, list = this.list;
    list.textContent = '';
    this.hits.forEach(function (h, i) {
      var li = document.createElement('li');
      li.id = self.id + '-o' + i;
      li.setAttribute('role', 'option');
      li.setAttribute('data-i', String(i));
      li.setAttribute('data-kind', h.kind);
      li.setAttribute('aria-selected', i === self.active ? 'true' : 'false');
      var name = document.createElement('span');
      name.className = 'gs-label';
      name.textContent = self.opts.lang && self.opts.lang() === 'en' && h.en ? h.en : h.label;
      var kind = document.createElement('span');
      kind.className = 'gs-kind';
      kind.textContent = self.kindText(h);
      li.appendChild(name);
      li.appendChild(kind);
      list.appendChild(li);
    });
    var open = this.hits.length > 0;
    list.hidden = !open;
    this.input.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (this.active >= 0) {
      this.input.setAttribute('aria-activedescendant', this.id + '-o' + this.active);
    } else { this.input.removeAttribute('aria-activedescendant'); }
  };

  Box.prototype.key = function (e) {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      if (!this.hits.length) { return; }
      e.preventDefault();
      var n = this.hits.length;
      this.active = (this.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      this.render();
    } else if (e.key === 'Escape') {
      this.close();
    }
  };

  Box.prototype.close = function () {
    this.hits = [];
    this.active = -1;
    this.render();
  };

  Box.prototype.pick = function (i) {
    var h = this.hits[i];
    if (!h) { return; }
    this.input.value = h.label;
    this.close();
    this.say('search_shown', {label: h.label});
    this.opts.onPick(h);
  };

  global.GisSearch = {fold: fold, hira: hira, chibanKey: chibanKey, parse: parse,
    search: search, load: load, Box: Box};
}(window));
