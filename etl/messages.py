"""Every user-facing string in one place, Japanese with English.

Why one table: staff read Japanese, vendors and reviewers read English, and tests assert exact
strings. ``text(key, **kw)`` renders ``"<ja> / <en>"``; ``reason(code)`` labels quarantine codes.
"""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    # --- configuration / spec errors
    "spec_yaml": ("{file}: YAMLとして読めません: {detail}", "{file}: not valid YAML: {detail}"),
    "spec_invalid": (
        "{file}: キー '{key}': {detail_ja}。修正: {fix_ja}",
        "{file}: key '{key}': {detail_en}. Fix: {fix_en}",
    ),
    "spec_id_mismatch": (
        "{file}: id '{id}' がファイル名と一致しません。修正: id を '{stem}' にする",
        "{file}: id '{id}' does not match the file name. Fix: set id to '{stem}'",
    ),
    "spec_unknown_normalizer": (
        "{file}: フィールド '{field}': 正規化 '{name}' は存在しません。使えるもの: {known}",
        "{file}: field '{field}': unknown normalizer '{name}'. Known: {known}",
    ),
    "spec_unknown_codelist": (
        "{file}: フィールド '{field}': コード表 '{name}' がありません。修正: layers/codelists/{name}.yml を作る",
        "{file}: field '{field}': code list '{name}' not found. "
        "Fix: create layers/codelists/{name}.yml",
    ),
    "spec_unknown_reader": (
        "{file}: ソース '{source}': reader '{name}' は存在しません。使えるもの: {known}",
        "{file}: source '{source}': unknown reader '{name}'. Known: {known}",
    ),
    "spec_unknown_layer": (
        "{file}: '{key}' が存在しないレイヤ '{layer}' を参照しています。修正: layers/{layer}.yml を作るか名前を直す",
        "{file}: '{key}' refers to unknown layer '{layer}'. "
        "Fix: create layers/{layer}.yml or correct the name",
    ),
    "spec_bad_crs": (
        "{file}: ソース '{source}': CRS '{crs}' を解釈できません。修正: 'EPSG:30167' のように書く",
        "{file}: source '{source}': cannot parse CRS '{crs}'. Fix: write it like 'EPSG:30167'",
    ),
    "spec_cycle": (
        "レイヤの依存関係が循環しています: {layers}",
        "layer dependencies form a cycle: {layers}",
    ),
    "unknown_layer_arg": (
        "レイヤ '{layer}' はありません。使えるもの: {known}",
        "no layer '{layer}'. Known: {known}",
    ),
    "no_specs": (
        "{dir} にレイヤ定義 (*.yml) がありません",
        "no layer specs (*.yml) in {dir}",
    ),
    # --- source / data errors
    "source_missing": (
        "レイヤ '{layer}': ファイル {file} がありません。修正: data/raw に置くか 'uozu-gis sample' を実行",
        "layer '{layer}': file {file} not found. Fix: put it in the raw folder or run "
        "'uozu-gis sample'",
    ),
    "source_unreadable": (
        "レイヤ '{layer}': ファイル {file} を読めません ({detail})。修正: 元システムから再出力する",
        "layer '{layer}': cannot read {file} ({detail}). Fix: export it again from the source system",
    ),
    "source_truncated": (
        "レイヤ '{layer}': {file} が途中で切れています ({detail})。修正: 元システムから再出力する",
        "layer '{layer}': {file} is truncated ({detail}). Fix: export it again from the source "
        "system",
    ),
    "source_missing_part": (
        "レイヤ '{layer}': {file} の {part} がありません。修正: .shp/.shx/.dbf をそろえて置く",
        "layer '{layer}': {file} is missing its {part}. Fix: copy .shp, .shx and .dbf together",
    ),
    "source_encoding": (
        "レイヤ '{layer}': {file} を {encoding} で読むと文字化けします ({detail})。"
        "修正: ソースの encoding を直す (例: cp932 / utf-8)",
        "layer '{layer}': {file} does not decode as {encoding} ({detail}). "
        "Fix: set the source's encoding (e.g. cp932 / utf-8)",
    ),
    "source_no_crs": (
        "レイヤ '{layer}': {file} に座標系 (.prj) がありません。修正: layers/{layer}.yml のソースに crs: を書く",
        "layer '{layer}': {file} has no CRS (.prj missing). "
        "Fix: set crs: on the source in layers/{layer}.yml",
    ),
    "source_crs_conflict": (
        "レイヤ '{layer}': {file} の .prj は {file_crs} ですが定義は {spec_crs} です。"
        "修正: どちらが正しいか確認し、定義を正とするなら crs_override: true",
        "layer '{layer}': {file} says {file_crs} but the spec says {spec_crs}. "
        "Fix: check which is right; to trust the spec set crs_override: true",
    ),
    "source_missing_field": (
        "レイヤ '{layer}': {file} に列 {fields} がありません (あるのは {have})。"
        "修正: layers/{layer}.yml の from: / rename: を直す",
        "layer '{layer}': {file} has no column(s) {fields} (it has {have}). "
        "Fix: correct from:/rename: in layers/{layer}.yml",
    ),
    "source_geom_missing": (
        "レイヤ '{layer}': {file} に図形がありません。修正: 図形付きで出力するか x_field/y_field を指定",
        "layer '{layer}': {file} has no geometry. Fix: export with geometry or set x_field/y_field",
    ),
    "crs_swapped": (
        "レイヤ '{layer}': {file} は X/Y (北/東) が入れ替わっているようです (入替えると{inside}%が市域内)。"
        "修正: ソースに axis_order: yx を書く",
        "layer '{layer}': {file} looks like X/Y (northing/easting) are swapped ({inside}% fall in the "
        "city when swapped). Fix: set axis_order: yx on the source",
    ),
    "crs_outside": (
        "レイヤ '{layer}': {file} の図形の{outside}%が市域外です (座標系 {crs})。"
        "修正: ソースの crs: を確認する",
        "layer '{layer}': {outside}% of {file} lies outside the city (CRS {crs}). "
        "Fix: check the source's crs:",
    ),
    "crs_tokyo_suspect": (
        "レイヤ '{layer}': {file} は {crs} と宣言されていますが、旧日本測地系 (約435 m のずれ) のようです "
        "(参照レイヤ '{reference}' との距離の中央値 {as_is:.1f} m → 補正すると {fixed:.1f} m)。"
        "修正: ソースの crs: を EPSG:30167 (旧日本測地系 VII系) にする",
        "layer '{layer}': {file} is declared {crs} but looks like Tokyo datum (~435 m shift: median "
        "distance to '{reference}' {as_is:.1f} m, {fixed:.1f} m once shifted). "
        "Fix: set the source's crs: to EPSG:30167 (Tokyo datum zone VII)",
    ),
    "grid_missing": (
        "変換グリッド {grid} がありません。修正: {dir} に置く (出典: 国土地理院)",
        "datum grid {grid} not found. Fix: put it in {dir} (source: GSI)",
    ),
    "grid_outside": (
        "レイヤ '{layer}': {file} の {n} 件がグリッド {grid} の範囲外で変換できません",
        "layer '{layer}': {n} record(s) of {file} fall outside grid {grid} and cannot be transformed",
    ),
    "join_layer_failed": (
        "レイヤ '{layer}': 結合先レイヤ '{other}' が失敗したため処理できません",
        "layer '{layer}': cannot run because the layer it joins, '{other}', failed",
    ),
    "run_failed": (
        "マージは失敗しました。前回のマスタは変更されていません。",
        "the merge failed; the previous master is unchanged.",
    ),
    "no_master": (
        "マスタがありません。修正: 先に 'uozu-gis merge' を実行",
        "no master yet. Fix: run 'uozu-gis merge' first",
    ),
    "no_run": (
        "実行 '{run}' の保存データがありません。保存されている実行: {known}",
        "no stored data for run '{run}'. Stored runs: {known}",
    ),
    "conservation": (
        "レイヤ '{layer}': 件数が合いません (読込 {read} ≠ 統合 {merged} + 隔離 {quarantined})",
        "layer '{layer}': counts do not add up (read {read} != merged {merged} + "
        "quarantined {quarantined})",
    ),
    # --- progress / results
    "stage_read": ("読込", "read"),
    "stage_normalize": ("正規化", "normalize"),
    "stage_transform": ("座標変換", "transform"),
    "stage_validate": ("検証", "validate"),
    "stage_write": ("書込", "write"),
    "merge_done": (
        "マージ完了: 実行 {run} — {layers} レイヤ, 統合 {merged} 件, 隔離 {quarantined} 件 ({seconds:.1f} 秒)",
        "merge done: run {run} — {layers} layers, {merged} merged, {quarantined} quarantined "
        "({seconds:.1f} s)",
    ),
    "validate_ok": ("検証 OK: {layers} レイヤ, {read} 件読込 (書込なし)", "validation OK: {layers} "
                    "layers, {read} records read (nothing written)"),
    "rollback_done": ("実行 {run} のマスタに戻しました", "rolled back the master to run {run}"),
    "sample_done": ("サンプルデータを {dir} に作成しました", "sample data written to {dir}"),
    "report_written": ("QAレポート: {path}", "QA report: {path}"),
}

REASONS: dict[str, tuple[str, str]] = {
    "NULL_GEOMETRY": ("図形なし", "geometry is null"),
    "EMPTY_GEOMETRY": ("空の図形", "geometry is empty"),
    "INVALID_GEOMETRY": ("修復できない不正な図形", "invalid geometry that could not be repaired"),
    "GEOMETRY_TYPE": ("図形の種類が違う", "wrong geometry type for the layer"),
    "OUTSIDE_BOUNDARY": ("市域外", "outside the city boundary"),
    "TRANSFORM_FAILED": ("座標変換できない", "coordinate transformation failed"),
    "MISSING_REQUIRED": ("必須項目が空", "a required field is empty"),
    "BAD_VALUE": ("値を解釈できない", "value cannot be parsed as the field type"),
    "OUT_OF_RANGE": ("値が範囲外", "value out of the allowed range"),
    "UNKNOWN_CODE": ("コード表にないコード", "code not in the code list"),
    "DUPLICATE_ID": ("IDの重複", "duplicate id"),
    "MISSING_REFERENCE": ("参照先がない", "referenced feature does not exist"),
    "FAR_FROM_REFERENCE": ("参照先から離れている", "too far from the referenced feature"),
    "JOIN_UNMATCHED": ("結合先がない", "no matching feature to join"),
    "TOO_SMALL": ("面積が小さすぎる", "area below the minimum"),
}


def text(msg_key: str, /, **kw: object) -> str:
    """Render message ``msg_key`` as ``"<ja> / <en>"``."""
    ja, en = MESSAGES[msg_key]
    return f"{ja.format(**kw)} / {en.format(**kw)}"


def ja(msg_key: str, /, **kw: object) -> str:
    return MESSAGES[msg_key][0].format(**kw)


def en(msg_key: str, /, **kw: object) -> str:
    return MESSAGES[msg_key][1].format(**kw)


def reason(code: str) -> str:
    """Bilingual label of a quarantine reason code."""
    j, e = REASONS[code]
    return f"{j} / {e}"
