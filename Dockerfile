# The twinsearch HTTP API (`twinsearch serve`), on the CPU build of torch.
FROM python:3.12-slim

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY twinsearch ./twinsearch
COPY indexer ./indexer
COPY cli ./cli
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        -c constraints.txt . \
    && useradd --create-home twinsearch \
    && mkdir /data && chown twinsearch /data

USER twinsearch
# Models come from the installed packages or a mounted folder; nothing is fetched at run time.
ENV TWINSEARCH_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"
CMD ["twinsearch", "serve", "--host", "0.0.0.0", "--port", "8000"]
