"""IMPORT_OPERATIONS: the routes of /v1/imports and /v1/ops/imports, with what /openapi.json says."""

from __future__ import annotations

from bridge.api import import_failures, imports
from bridge.api.import_schemas import (
    AddJobs,
    CreateImport,
    FailurePage,
    FailuresQuery,
    ImportEnvelope,
    ImportPage,
    ListImportsQuery,
    WatchList,
)
from bridge.api.openapi import Operation

AUTHED = (401, 413, 429, 503)  # 503 storage_unavailable: every authenticated route needs storage
_CSV = (
    (
        "text/csv",
        "With `Accept: text/csv` or `format=csv`: every failure, streamed, under the header "
        "`external_id,job_id,item_id,error_code,error_message`; a cell starting with = + - @, a "
        "tab or a carriage return is prefixed with a single quote, so no spreadsheet runs it.",
    ),
)


IMPORT_OPERATIONS = (
    Operation(
        method="POST",
        path="/v1/imports",
        operation_id="createImport",
        summary="Create an import: many jobs told as one story",
        tag="imports",
        endpoint=imports.create_import,
        status=201,
        response=ImportEnvelope,
        errors=(400, *AUTHED, 403, 422),
        body=CreateImport,
        idempotent_key=True,
    ),
    Operation(
        method="GET",
        path="/v1/imports",
        operation_id="listImports",
        summary="List the client's imports (an operator: every client's), newest first",
        tag="imports",
        endpoint=imports.list_imports,
        status=200,
        response=ImportPage,
        errors=(400, *AUTHED),
        query=ListImportsQuery,
    ),
    Operation(
        method="GET",
        path="/v1/imports/{import_id}",
        operation_id="getImport",
        summary="Get one import",
        tag="imports",
        endpoint=imports.get_import,
        status=200,
        response=ImportEnvelope,
        errors=(*AUTHED, 404),
    ),
    Operation(
        method="DELETE",
        path="/v1/imports/{import_id}",
        operation_id="cancelImport",
        summary="Cancel an import and its active watches (import.cancelled)",
        tag="imports",
        endpoint=imports.cancel_import,
        status=200,
        response=ImportEnvelope,
        errors=(*AUTHED, 404),
    ),
    Operation(
        method="POST",
        path="/v1/imports/{import_id}/jobs",
        operation_id="addImportJobs",
        summary="Add jobs to an import: one watch each; a job already in it returns its watch again",
        tag="imports",
        endpoint=imports.add_jobs,
        status=201,
        response=WatchList,
        errors=(400, *AUTHED, 404, 409),
        body=AddJobs,
    ),
    Operation(
        method="POST",
        path="/v1/imports/{import_id}/close",
        operation_id="closeImport",
        summary="Close an import: no more jobs; it ends when its jobs have",
        tag="imports",
        endpoint=imports.close_import,
        status=200,
        response=ImportEnvelope,
        errors=(*AUTHED, 404),
    ),
    Operation(
        method="GET",
        path="/v1/imports/{import_id}/failures",
        operation_id="listImportFailures",
        summary="An import's failed images, by pages (JSON) or all of them (CSV)",
        tag="imports",
        endpoint=import_failures.list_failures,
        status=200,
        response=FailurePage,
        errors=(400, *AUTHED, 404),
        query=FailuresQuery,
        also=_CSV,
    ),
    Operation(
        method="GET",
        path="/v1/ops/imports",
        operation_id="opsListImports",
        summary="Every client's imports, newest first (operator token)",
        tag="operators",
        endpoint=imports.ops_list_imports,
        status=200,
        response=ImportPage,
        errors=(400, *AUTHED),
        query=ListImportsQuery,
    ),
    Operation(
        method="GET",
        path="/v1/ops/imports/{import_id}",
        operation_id="opsGetImport",
        summary="Any client's import (operator token)",
        tag="operators",
        endpoint=imports.ops_get_import,
        status=200,
        response=ImportEnvelope,
        errors=(*AUTHED, 404),
    ),
    Operation(
        method="GET",
        path="/v1/ops/imports/{import_id}/failures",
        operation_id="opsListImportFailures",
        summary="Any client's import's failed images, as JSON pages or CSV (operator token)",
        tag="operators",
        endpoint=import_failures.ops_list_failures,
        status=200,
        response=FailurePage,
        errors=(400, *AUTHED, 404),
        query=FailuresQuery,
        also=_CSV,
    ),
)
