# The probe image: the data plane only (probes/), with httpx and dnspython. Non-root; the uid/gid
# differ from the sidecar's 1337 so its traffic is captured (SPEC §5).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN python -m pip install --no-cache-dir "httpx>=0.27" "dnspython>=2.6"
COPY probes/ /app/probes/
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["python", "-m", "probes"]
