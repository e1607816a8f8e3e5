# gatehouse: a static binary on a distroless base. Port 5500.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gatehouse ./cmd/gatehouse

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
ENV PORT=5500 APP_ENV=production LOG_FORMAT=json
EXPOSE 5500
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve"]
