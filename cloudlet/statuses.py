"""FastAPI Cloud's deployment and custom-domain status vocabularies (contract §8)."""

from __future__ import annotations

SUCCESSFUL = frozenset({"success", "verifying_skipped"})
BUILD_FAILED = frozenset(
    {
        "extracting_failed",
        "extracting_failed_archive_too_large",
        "building_image_failed",
        "building_image_failed_timeout",
    }
)
TERMINAL = (
    SUCCESSFUL
    | BUILD_FAILED
    | frozenset(
        {
            "build_skipped_filtered",
            "build_skipped_superseded",
            "failed",
            "verifying_failed",
            "verification_failed_oom",
            "deploying_failed",
            "deploying_skipped",
            "degraded",
            "degraded_oom",
            "expired",
        }
    )
)
# Statuses reached only after the image build finished: the build-log stream ends "complete".
BUILD_COMPLETED = frozenset(
    {
        "deploying",
        "verifying",
        "success",
        "verifying_skipped",
        "verifying_failed",
        "verification_failed_oom",
        "deploying_failed",
        "deploying_skipped",
        "degraded",
        "degraded_oom",
        "expired",
    }
)
# Statuses in which a build ended without producing an image: the stream ends "failed".
BUILD_ENDED_WITHOUT_IMAGE = BUILD_FAILED | frozenset(
    {"build_skipped_filtered", "build_skipped_superseded", "failed", "upload_cancelled"}
)
# A deployment in one of these is queued or being built; a restart must pick it up again.
IN_BUILD = frozenset({"ready_for_build", "extracting", "building", "building_image"})
IN_ROLLOUT = frozenset({"deploying", "verifying"})

LABELS = {
    "waiting_upload": "Awaiting Upload",
    "upload_cancelled": "Upload Cancelled",
    "ready_for_build": "Build Queued",
    "building": "Building",
    "extracting": "Extracting Upload",
    "building_image": "Building Image",
    "deploying": "Deploying Image",
    "verifying": "Verifying Readiness",
    "success": "Ready",
    "verifying_skipped": "Verification Skipped",
    "extracting_failed": "Extraction Failed",
    "extracting_failed_archive_too_large": "Archive Too Large",
    "building_image_failed": "Build Failed",
    "building_image_failed_timeout": "Build Timed Out",
    "build_skipped_filtered": "Build Skipped (Filtered)",
    "build_skipped_superseded": "Build Skipped (Superseded)",
    "deploying_failed": "Deployment Failed",
    "deploying_skipped": "Deployment Skipped",
    "verifying_failed": "Verification Failed",
    "verification_failed_oom": "Verification Failed (OOM)",
    "degraded": "Degraded",
    "degraded_oom": "Degraded (OOM)",
    "expired": "Expired",
    "failed": "Failed",
}

DOMAIN_STATUSES = frozenset(
    {
        "internal_dcv_pending",
        "internal_dcv_missing",
        "internal_dcv_invalid",
        "internal_dcv_timeout",
        "internal_dcv_revoked",
        "external_dcv_pending",
        "external_dcv_proxied",
        "external_dcv_secured",
        "external_dcv_blocked",
        "external_dcv_timeout",
        "origin_setup_pending",
        "origin_setup_missing",
        "origin_setup_invalid",
        "origin_setup_timeout",
        "origin_setup_success",
        "origin_setup_removed",
    }
)
DOMAIN_FAILED = frozenset(
    {
        "internal_dcv_timeout",
        "internal_dcv_revoked",
        "external_dcv_blocked",
        "external_dcv_timeout",
        "origin_setup_timeout",
        "origin_setup_removed",
    }
)
DOMAIN_LIVE = frozenset({"origin_setup_success"})
