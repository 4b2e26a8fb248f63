"""Reading an uploaded file: the encoding (detected or chosen), its rows, and a first guess at the mapping.

Detection: UTF-8 (with or without BOM) when the sample decodes strictly as UTF-8; otherwise each other
candidate that decodes the sample strictly gets a score -- characters of its script that are common
(frequent Chinese characters, Thai letters in a valid order) count for it, private-use, control and
misplaced Thai marks against it -- and the best score wins.
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from flask_babel import lazy_gettext as _l

ENCODINGS = {
    "utf-8-sig": _l("Unicode (UTF-8)"),
    "gb18030": _l("Simplified Chinese (GBK / GB18030)"),
    "big5": _l("Traditional Chinese (Big5)"),
    "cp874": _l("Thai (TIS-620 / Windows-874)"),
}
SAMPLE = 256 * 1024
MAX_CELL = 100 * 1024  # characters: a longer cell is refused, with its row and column

# Frequent characters of Chinese names, companies and places, in simplified and traditional forms.
_COMMON_HAN = set(
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多"
    "天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但"
    "身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四"
    "第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通"
    "目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物"
    "台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远"
    "资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江"
    "语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据"
    "导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴切板伟陈刘杨赵吴周徐孙胡朱高林何郭马罗梁宋"
    "郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛"
    "邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红燕鹏辉"
    "這個們來國說時會對過學後麼經頭見現從動兩長樣將無開發當還沒實點於與裡問機給幾間電門東車場師書員華報馬總親"
    "務記邊風戰愛讓認論義結術領傳遠資隊帶條變聯權運區轉語黃錢黨倒設單據導網觀爭組視濟喜離雖壞興陳劉楊趙吳孫郭羅"
    "梁鄭謝韓馮董蕭曹袁鄧許沈曾彭呂蘇盧蔣蔡賈葉閻餘潘鍾汪姜陸龔鳳龍錢湯賀賴偉芳娜敏靜麗強磊軍洋勇豔傑娟濤偉業銷售"
    "有限公司股份集团集團科技贸易貿易电子電子网络網絡咨询諮詢服务服務香港台北深圳广州廣州北京上海杭州成都武汉武漢"
    "电话電話邮箱郵箱姓名名字地址客户客戶联系聯繫"
)
_THAI_MARKS = re.compile(
    r"(?:^|[^\u0e01-\u0e2e\u0e31-\u0e3a\u0e47-\u0e4e])[\u0e31\u0e34-\u0e3a\u0e47-\u0e4e]"
)


class ReadError(ValueError):
    """The file cannot be read as it is: the message says why (already translated)."""


def _everyday(ch: str, encoding: str) -> bool:
    """A character of the everyday part of its own standard: GB2312 level 1 for GBK / GB18030, the
    frequent block (A440-C67E) for Big5. Text decoded with the wrong one of the two lands outside it
    about half the time."""
    try:
        if encoding == "big5":
            return 0xA4 <= ch.encode("big5")[0] <= 0xC6
        return 0xB0 <= ch.encode("gb2312")[0] <= 0xD7
    except UnicodeEncodeError:
        return False


def _score(text: str, encoding: str = "") -> float:
    good = bad = 0
    for ch in text:
        o = ord(ch)
        if o < 128:
            continue
        if 0x0E01 <= o <= 0x0E5B:
            good += 1
        elif ch in _COMMON_HAN:
            good += 3
        elif 0x4E00 <= o <= 0x9FFF:
            good += 1 if _everyday(ch, encoding) else 0.1
        elif 0xE000 <= o <= 0xF8FF or 0x80 <= o <= 0x9F or unicodedata.category(ch) in ("Co", "Cn", "Cc"):
            bad += 5
    bad += 3 * len(_THAI_MARKS.findall(text))
    high = sum(1 for ch in text if ord(ch) >= 128) or 1
    return (good - bad) / high


def detect_encoding(sample: bytes) -> str | None:
    """The most likely encoding of a file that starts with `sample`; None when nothing decodes it."""
    final = len(sample) < SAMPLE
    try:
        codecs.getincrementaldecoder("utf-8-sig")("strict").decode(sample, final=final)
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    best, best_score = None, float("-inf")
    for name in ("gb18030", "big5", "cp874"):
        try:
            text = codecs.getincrementaldecoder(name)("strict").decode(sample, final=final)
        except UnicodeDecodeError:
            continue
        score = _score(text, name)
        if score > best_score:
            best, best_score = name, score
    return best


def _check_cells(row: list[str]) -> list[str]:
    return ["" if c is None else str(c) for c in row]


def csv_rows(path: Path, encoding: str) -> Iterator[list[str]]:
    """The rows of a CSV file, header first; a byte the encoding cannot read raises ReadError."""
    with path.open("rb") as raw:
        head = raw.read(64 * 1024)
    try:
        dialect = csv.Sniffer().sniff(head.decode(encoding, "ignore").split("\n", 5)[0], ",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    field_limit = csv.field_size_limit()
    csv.field_size_limit(max(field_limit, 64 * 1024 * 1024))
    try:
        with path.open(encoding=encoding, errors="strict", newline="") as handle:
            line = 0
            try:
                for row in csv.reader(handle, delimiter=delimiter):
                    line += 1
                    yield row
            except UnicodeDecodeError:
                raise ReadError(
                    str(
                        _l(
                            "The file is not valid %(encoding)s (near row %(row)d): choose its encoding.",
                            encoding=ENCODINGS.get(encoding, encoding),
                            row=line + 1,
                        )
                    )
                ) from None
            except csv.Error as err:
                raise ReadError(
                    str(_l("Row %(row)d cannot be read as CSV: %(reason)s", row=line + 1, reason=str(err)))
                ) from None
    finally:
        csv.field_size_limit(field_limit)


def xlsx_rows(path: Path) -> Iterator[list[str]]:
    """The rows of the first sheet of an XLSX workbook (read-only: the sheet is streamed)."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds for a file that is not a workbook
        raise ReadError(str(_l("The file is not an Excel workbook (.xlsx) that can be read."))) from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            return
        for values in sheet.iter_rows(values_only=True):
            row = []
            for value in values:
                if value is None:
                    row.append("")
                elif hasattr(value, "date") and hasattr(value, "hour"):
                    row.append(
                        value.date().isoformat() if not (value.hour or value.minute) else value.isoformat()
                    )
                elif isinstance(value, float) and value.is_integer():
                    row.append(str(int(value)))
                else:
                    row.append(str(value))
            while row and row[-1] == "":
                row.pop()
            yield row
    finally:
        book.close()


def rows(path: Path, file_format: str, encoding: str | None) -> Iterator[list[str]]:
    """Every row of the file, header first, blank rows left out (their row numbers still count)."""
    if not path.is_file():
        raise ReadError(str(_l("The uploaded file is no longer there: upload it again.")))
    source = xlsx_rows(path) if file_format == "xlsx" else csv_rows(path, encoding or "utf-8-sig")
    yield from source


# Guessing the mapping ------------------------------------------------------------------------------

# field -> header words (lower case, spaces/underscores/dashes removed) in English, Chinese and Thai
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": (
        "name",
        "fullname",
        "contactname",
        "contact",
        "姓名",
        "名字",
        "联系人",
        "聯絡人",
        "聯繫人",
        "ชื่อ",
        "ชื่อนามสกุล",
        "ชื่อเต็ม",
    ),
    "first_name": ("firstname", "givenname", "forename", "名", "ชื่อจริง"),
    "last_name": ("lastname", "surname", "familyname", "姓", "นามสกุล"),
    "email": (
        "email",
        "emailaddress",
        "mail",
        "e-mail",
        "邮箱",
        "邮件",
        "电子邮件",
        "電郵",
        "郵箱",
        "電子郵件",
        "อีเมล",
        "อีเมล์",
    ),
    "phones": (
        "phone",
        "phones",
        "telephone",
        "tel",
        "mobile",
        "cell",
        "phonenumber",
        "电话",
        "電話",
        "手机",
        "手機",
        "โทรศัพท์",
        "เบอร์โทร",
        "มือถือ",
        "เบอร์โทรศัพท์",
    ),
    "company": (
        "company",
        "companyname",
        "organization",
        "organisation",
        "account",
        "公司",
        "公司名称",
        "公司名稱",
        "单位",
        "บริษัท",
        "ชื่อบริษัท",
    ),
    "job_title": ("jobtitle", "title", "position", "role", "职位", "職位", "职务", "職稱", "ตำแหน่ง"),
    "website": ("website", "web", "url", "domain", "网站", "網站", "网址", "網址", "เว็บไซต์"),
    "industry": ("industry", "sector", "行业", "行業", "อุตสาหกรรม"),
    "street": ("street", "address", "地址", "街道", "ที่อยู่"),
    "city": ("city", "town", "城市", "市", "เมือง", "จังหวัด"),
    "region": ("region", "state", "province", "省", "省份", "地区", "地區", "ภาค"),
    "postal_code": ("postalcode", "postcode", "zip", "zipcode", "邮编", "郵遞區號", "郵編", "รหัสไปรษณีย์"),
    "country": ("country", "国家", "國家", "ประเทศ"),
    "tags": ("tags", "tag", "labels", "标签", "標籤", "แท็ก"),
    "source": ("source", "leadsource", "来源", "來源", "แหล่งที่มา"),
    "lifecycle_stage": ("stage", "lifecyclestage", "lifecycle", "阶段", "階段", "สถานะ"),
    "birthday": ("birthday", "birthdate", "dateofbirth", "dob", "生日", "出生日期", "วันเกิด"),
    "interests": ("interests", "兴趣", "興趣", "ความสนใจ"),
}


def _norm(header: str) -> str:
    return re.sub(r"[\s_\-.:：]+", "", unicodedata.normalize("NFKC", header or "").lower())


def guess_mapping(headers: list[str], fields: tuple[str, ...]) -> dict[str, str]:
    """column index (as a string) -> field, for the headers that name a field this record type has."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for i, header in enumerate(headers):
        key = _norm(header)
        for fld in fields:
            if fld in taken:
                continue
            if key == _norm(fld) or key in SYNONYMS.get(fld, ()):
                mapping[str(i)] = fld
                taken.add(fld)
                break
    return mapping
