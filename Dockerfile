# certflow image (the same image runs `certflow server`, `certflow worker` and `certflow admin`).
FROM node:20-bookworm-slim

# softhsm2/opensc: PKCS#11 key backend (any PKCS#11 module can be mounted instead);
# build tools for the pkcs11js native addon.
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 opensc ca-certificates python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY bin ./bin
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY tsconfig.json ./
# Builds the compiled command (bin/bundle.js) into the image, so containers start without compiling.
RUN node bin/certflow.js --help > /dev/null

ENV NODE_ENV=production \
    CERTFLOW_HOME=/var/lib/certflow
VOLUME ["/var/lib/certflow"]
EXPOSE 8443 8080 8444
ENTRYPOINT ["node", "/app/bin/certflow.js"]
CMD ["server"]
