# keybox-ivr: the service, the simulated Asterisk and the KimVoice sandbox in one image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ivr ./ivr
COPY prompts ./prompts
RUN pip install --no-cache-dir -e .
ENV IVR_LOG_FORMAT=json
EXPOSE 4573 8080 8081
ENTRYPOINT ["ivr"]
CMD ["serve"]
