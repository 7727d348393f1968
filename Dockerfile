# keybox-ivr: the service, the simulated Asterisk and the KimVoice sandbox in one image.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng sox && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ivr ./ivr
COPY prompts ./prompts
RUN pip install --no-cache-dir -e .
RUN ivr prompts build --out /app/sounds
ENV IVR_LOG_FORMAT=json IVR_SOUNDS_DIR=/app/sounds
EXPOSE 4573 8080 8081
ENTRYPOINT ["ivr"]
CMD ["serve"]
