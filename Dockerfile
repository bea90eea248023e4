# One image for every Sealroom service: `sealroom keyservice`, `sealroom conference`,
# `sealroom idp` (development only) or `sealroom serve`. Settings come from SEALROOM_*
# variables (docs/operations.md). pymcl ships wheels for CPython 3.11 on x86-64 Linux.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/sealroom --create-home sealroom \
    && mkdir -p /var/lib/sealroom/secrets /var/lib/sealroom/idp \
    && chown -R sealroom /var/lib/sealroom
COPY --from=build /wheels /wheels
# The core install only: no demo packages (PyAV, numpy, matplotlib).
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER sealroom
WORKDIR /var/lib/sealroom
ENV PYTHONUNBUFFERED=1 \
    SEALROOM_HOST=0.0.0.0 \
    SEALROOM_LOG_FORMAT=json \
    SEALROOM_SECRETS_FILE=/var/lib/sealroom/secrets/keyservice-secrets.json
EXPOSE 8470 8471 8472
ENTRYPOINT ["sealroom"]
CMD ["serve"]
