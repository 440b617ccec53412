"""A department the shipped catalog does not have: 市生态环境局's register of discharge permits (排污许可),
a daily GBK CSV. Tests add it to a copy of catalog/ (and expectations/) to show that a new source needs
no code change."""

CODE = "ee.discharge_permit"

RESOURCE = """\
# 排污许可: 市生态环境局 exports its register of discharge permits each day as a GBK CSV.
code: ee.discharge_permit
name: 排污许可证信息
name_en: Pollutant discharge permits
kind: 部门
category: 生态环境/排污许可
provider: ee
summary: 市生态环境局核发的排污许可证（持证单位统一社会信用代码、单位名称、许可证编号、有效期），每日以CSV导出报送。
format: csv
share_type: 无条件共享
share_method: 接口
open_type: 无条件开放
update_cycle: daily
published: 2026-11-01
related: [amr.enterprise]
grain: one row per permit holder (统一社会信用代码), its current permit
key: [uscc]
source: {kind: csv, pattern: "ee/permit/*.csv"}
items:
  - {column: uscc, name: 统一社会信用代码, name_en: Permit holder code, type: uscc, required: true}
  - {column: name, name: 单位名称, name_en: Permit holder name, required: true, authority: amr}
  - {column: permit_no, name: 许可证编号, name_en: Permit number, required: true}
  - {column: valid_from, name: 有效期起, name_en: Valid from, type: date, required: true}
  - {column: valid_to, name: 有效期至, name_en: Valid until, type: date, required: true, future_ok: true}
"""
EXPECTATIONS = """\
# Cross-field rules for 排污许可证信息.
resource: ee.discharge_permit
rules:
  - id: EE.valid_period
    severity: row
    zh: 有效期至不得早于有效期起
    en: A permit cannot end before it starts
    fail_when: "valid_from is not null and valid_to is not null and valid_to < valid_from"
"""
