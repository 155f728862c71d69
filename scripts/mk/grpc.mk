# gRPC: the Node.js interop client (@grpc/grpc-js + @grpc/proto-loader), pinned in tests/interop/grpc-node
# (package.json + package-lock.json), for tests/integration/grpc/test_node_interop.py.
GRPC_NODE_DIR   := tests/interop/grpc-node
GRPC_NODE_STAMP := build/.grpc-node-npm-stamp
SETUP_STEPS += $(GRPC_NODE_STAMP)

# npm ci into tests/interop/grpc-node/node_modules (git-ignored); CI=true fails the build when it fails.
$(GRPC_NODE_STAMP): $(GRPC_NODE_DIR)/package.json $(GRPC_NODE_DIR)/package-lock.json
	@scripts/npm-ci.sh $(GRPC_NODE_DIR) $@ "the Node gRPC interop test will fail"
