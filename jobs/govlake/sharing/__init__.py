"""Sharing KPIs (公共数据共享率, 汇聚率, 表格字段/证明材料共享率, 归集量, freshness, 认领/挂载, 需求满足率)
and the bureau's two inputs beyond the lake: the 事项清单 workbook and the 共享申请记录 log
(formats in docs/sharing-inputs.md). ``govlake.sharing.kpis:sharing_kpis`` is the KPI provider.
"""

from govlake.sharing._lake import LakeFacts, read_lake
from govlake.sharing._matters import (
    ELicence,
    FormField,
    ProofMaterial,
    ServiceMatter,
    ServiceMatters,
    load_service_matters,
)
from govlake.sharing._requests import RequestLog, ShareRequest, load_requests
from govlake.sharing._rows import SharingInputError
from govlake.sharing._schedule import Freshness, freshness, next_due
from govlake.sharing.kpis import (
    MATTERS_FILE,
    REQUESTS_FILE,
    compute_sharing_kpis,
    matters_path,
    requests_path,
    sharing_kpis,
)

__all__ = [
    "MATTERS_FILE", "REQUESTS_FILE",
    "ELicence", "FormField", "Freshness", "LakeFacts", "ProofMaterial", "RequestLog", "ServiceMatter",
    "ServiceMatters", "ShareRequest", "SharingInputError",
    "compute_sharing_kpis", "freshness", "load_requests", "load_service_matters", "matters_path", "next_due",
    "read_lake", "requests_path", "sharing_kpis",
]
