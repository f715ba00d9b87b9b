# The probe image: meshprobe's data plane only (probes/), run by `meshprobe check` in a pod beside
# the workload's sidecar. It holds the standard library, httpx and dnspython (pinned with hashes in
# requirements/probes.lock) and nothing else. Its user is 65532:65532, never the proxy's 1337:
# traffic from 1337 bypasses the sidecar. It writes nothing, so it runs on a read-only root
# filesystem. diag/image.py holds the same user and entrypoint for the pod spec (a test compares).
#
#   docker build -t meshprobe-probe .
#   docker run --rm --read-only --user 65532:65532 meshprobe-probe --sidecar off example.com

FROM python:3.11-slim-bookworm AS deps
COPY requirements/probes.lock /tmp/probes.lock
RUN python -m pip install --no-cache-dir --disable-pip-version-check --no-deps --only-binary=:all: \
        --require-hashes --target /opt/deps -r /tmp/probes.lock \
    && python -m compileall -q /opt/deps

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/deps:/app \
    HOME=/tmp
COPY --from=deps /opt/deps /opt/deps
COPY probes/*.py /app/probes/
RUN python -m compileall -q /app/probes
WORKDIR /app
USER 65532:65532
ENTRYPOINT ["python", "-m", "probes"]
