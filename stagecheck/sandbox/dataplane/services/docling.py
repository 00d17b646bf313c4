"""docling-serve, without model weights: converts HTML, Markdown and DOCX (process only)."""

from __future__ import annotations

from stagecheck.sandbox.dataplane.plan import ProcessContext, ProcessSpec, Service
from stagecheck.sandbox.dataplane.probes import docling_healthy

NAME = "docling"
# docling-jobkit builds the PDF pipeline before it converts any document, HTML too. The standard
# pipeline loads layout weights from the Hugging Face hub, out of reach here; a VLM pipeline whose
# model is a remote API (Ollama on localhost, never called for HTML, Markdown or DOCX) builds
# without weights. So a conversion in this sandbox sends these options as well.
OFFLINE_OPTIONS = {"pipeline": "vlm", "vlm_pipeline_model": "granite_vision_ollama"}


def process(ctx: ProcessContext) -> ProcessSpec:
    """On loopback: no UI, no model loading at boot, no trace or metric export, no hub; its
    scratch files under the state directory."""
    scratch = ctx.fresh_dir(NAME) / "scratch"
    scratch.mkdir()
    return ProcessSpec(
        [ctx.envs[NAME].bin("docling-serve"), "run", "--host", "127.0.0.1"]
        + ["--port", str(ctx.ports[NAME][0])],
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "CUDA_VISIBLE_DEVICES": "",  # torch is a CUDA build; there is no GPU to look for
            "DOCLING_SERVE_ENABLE_UI": "false",
            "DOCLING_SERVE_LOAD_MODELS_AT_BOOT": "false",
            "DOCLING_SERVE_OTEL_ENABLE_TRACES": "false",
            "DOCLING_SERVE_OTEL_ENABLE_OTLP_METRICS": "false",
            "DOCLING_SERVE_SCRATCH_PATH": str(scratch),
            # For the VLM pipeline of OFFLINE_OPTIONS, whose API is never called.
            "DOCLING_SERVE_ENABLE_REMOTE_SERVICES": "true",
            # A synchronous conversion polls its task: each poll waits this long (default 2 s).
            "DOCLING_SERVE_SYNC_POLL_INTERVAL": "1",
        },
    )


SERVICE = Service(NAME, probe=docling_healthy, ready_timeout_s=120.0, process=process)
