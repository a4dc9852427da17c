# One image for every service; docker-compose picks the command.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

RUN useradd --create-home --uid 10001 sm \
    && mkdir -p /data/kis-sim && chown sm /data/kis-sim  # a new named volume takes this owner
COPY pyproject.toml README.md ./
COPY stock_manager ./stock_manager
RUN pip install .

USER sm
ENTRYPOINT ["stock-manager"]
CMD ["--help"]
