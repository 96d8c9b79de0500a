// Anchors rv_backends so the library exists before any backend does.
