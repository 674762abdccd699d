"""Publication strings: re-exported from ``etl/messages.py`` (the one table of UI strings).

``PYGEOAPI_UI_JA`` is a Japanese catalogue for the strings in pygeoapi's own HTML templates:
pygeoapi ships no ``ja`` locale (and its wheel ships no compiled catalogues at all), so publish
compiles this table into ``locale/ja/LC_MESSAGES/messages.mo`` of each release.
"""

from __future__ import annotations

from config.messages import MESSAGES, both, en, ja, text

__all__ = ["MESSAGES", "PYGEOAPI_UI_JA", "both", "en", "ja", "text"]

PYGEOAPI_UI_JA: dict[str, str] = {
    "text_direction": "ltr",  # pygeoapi puts this msgid in <html dir="...">
    "Home": "ホーム",
    "Collections": "データ一覧",
    "Collection": "データ",
    "Conformance": "適合クラス",
    "Items": "地物",
    "Items in this collection": "このデータの地物数",
    "Browse Items": "地物を見る",
    "Browse": "見る",
    "Browse through the items of": "地物を見る:",
    "Queryables": "絞り込み項目",
    "Display Queryables": "絞り込み項目を表示",
    "Display Queryables of": "絞り込み項目:",
    "Schema": "スキーマ",
    "Display Schema": "スキーマを表示",
    "Display Schema of": "スキーマ:",
    "Prev": "前へ",
    "Next": "次へ",
    "Limit": "表示件数",
    "default": "既定",
    "Warning: Higher limits not recommended!": "注意: 件数を増やすと表示が遅くなります",
    "No items": "地物がありません",
    "Name": "名称",
    "Description": "説明",
    "Links": "リンク",
    "License": "ライセンス",
    "Exception": "エラー",
    "Value": "値",
    "Property": "項目",
    "URL": "URL",
    "Terms of service": "利用規約",
    "Telephone": "電話",
    "Fax": "FAX",
    "Email": "メール",
    "Hours": "受付時間",
    "Contact point": "問い合わせ先",
    "Contact instructions": "問い合わせ方法",
    "Contact URL": "問い合わせ URL",
    "Address": "住所",
    "Provider": "提供者",
    "Documentation": "説明書",
    "Swagger UI": "Swagger UI",
    "ReDoc": "ReDoc",
    "OpenAPI Document": "OpenAPI 文書",
    "API Definition": "API 定義",
    "View the collections in this service": "このサービスのデータ一覧を見る",
    "View the conformance classes of this service": "このサービスの適合クラスを見る",
    "Data collections in this service": "このサービスのデータ",
    "Reference Systems": "座標参照系",
    "Storage CRS": "格納座標系",
    "CRS": "座標系",
    "Epoch": "元期",
    "Powered by ": "使用ソフトウェア: ",
    "json": "JSON",
    "jsonld": "JSON-LD",
    "This document as JSON": "この文書 (JSON)",
    "This document as GeoJSON": "この文書 (GeoJSON)",
    "This document as HTML": "この文書 (HTML)",
    "Items (next)": "地物 (次)",
    "Items (prev)": "地物 (前)",
}
