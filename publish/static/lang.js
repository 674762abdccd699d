/*
 * The page language of every page: ?lang=, else the choice remembered on this device (one key
 * for the server pages and the map pages), else the browser's languages (Japanese for ja-*,
 * English otherwise). やさしい にほんご is offered by the switch. Runs in <head> (the map pages
 * inline this file) so the page paints in its language at once: <html data-lang> names it
 * (ja | en | ja@easy), <html lang> is its BCP 47 tag (ja for やさしい日本語); the server
 * pages' buttons are wired when the document is ready, the map pages switch with GisLang.set.
 */
(function () {
  'use strict';
  var KEY = 'gis-map-lang';
  var LANGS = ['ja', 'en', 'ja@easy'];
  var root = document.documentElement;

  function fromBrowser() {
    var list = navigator.languages && navigator.languages.length ? navigator.languages
      : [navigator.language || 'ja'];
    for (var i = 0; i < list.length; i++) {
      var l = String(list[i]).toLowerCase();
      if (l === 'ja' || l.indexOf('ja-') === 0) { return 'ja'; }
      if (l === 'en' || l.indexOf('en-') === 0) { return 'en'; }
    }
    return 'en';
  }

  function initial() {
    var q = new URLSearchParams(window.location.search).get('lang');
    if (LANGS.indexOf(q) >= 0) { return q; }
    try {
      var s = window.localStorage.getItem(KEY);
      if (LANGS.indexOf(s) >= 0) { return s; }
    } catch (e) { /* storage blocked */ }
    return fromBrowser();
  }

  function apply(l, remember) {
    root.setAttribute('data-lang', l);
    root.lang = l === 'en' ? 'en' : 'ja';
    if (remember) {
      try { window.localStorage.setItem(KEY, l); } catch (e) { /* not remembered */ }
    }
    var buttons = document.querySelectorAll('[data-set-lang]');
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute('aria-pressed',
        buttons[i].getAttribute('data-set-lang') === l ? 'true' : 'false');
    }
    document.dispatchEvent(new CustomEvent('gis-lang', {detail: l}));
  }

  window.GisLang = {get: function () { return root.getAttribute('data-lang') || 'ja'; },
    set: function (l) { apply(l, true); }, LANGS: LANGS};
  apply(initial(), false);
  document.addEventListener('DOMContentLoaded', function () {
    apply(window.GisLang.get(), false);
    document.addEventListener('click', function (e) {
      var b = e.target.closest && e.target.closest('[data-set-lang]');
      if (b) { apply(b.getAttribute('data-set-lang'), true); }
    });
  });
}());
