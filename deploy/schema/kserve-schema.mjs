// The schema of KServe's InferenceService (serving.kserve.io/v1beta1), written from KServe's API types
// (InferenceServiceSpec, PredictorSpec, ComponentExtensionSpec, LoggerSpec, Batcher, StorageUri) because no
// package registry reachable from CI ships KServe's CRD. It covers KServe's own fields; a predictor also
// inlines a Kubernetes PodSpec, which validate-manifests.mjs checks against the Kubernetes schema.

const integer = { type: "integer" };
const nonNegative = { type: "integer", minimum: 0 };
const stringMap = { type: "object", additionalProperties: { type: "string" } };

// Model-server implementations: exactly one of them, or containers (a custom predictor).
const implementations = ["sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml", "lightgbm", "paddle", "model"];

const componentExtension = {
    minReplicas: nonNegative,
    maxReplicas: nonNegative,
    scaleTarget: integer,
    scaleMetric: { enum: ["cpu", "memory", "concurrency", "rps"] },
    scaleMetricType: { enum: ["Utilization", "AverageValue"] },
    containerConcurrency: nonNegative,
    timeout: nonNegative,
    canaryTrafficPercent: { type: "integer", minimum: 0, maximum: 100 },
    logger: {
        type: "object",
        additionalProperties: false,
        properties: { url: { type: "string" }, mode: { enum: ["all", "request", "response"] } },
    },
    batcher: {
        type: "object",
        additionalProperties: false,
        properties: { maxBatchSize: integer, maxLatency: integer, timeout: integer },
    },
    labels: stringMap,
    annotations: stringMap,
    deploymentStrategy: { type: "object" },
    autoScaling: { type: "object" },
};

const predictorOwn = {
    ...Object.fromEntries(implementations.map((name) => [name, { type: "object" }])),
    storageUris: {
        type: "array",
        minItems: 1,
        items: {
            type: "object",
            additionalProperties: false,
            required: ["uri"],
            properties: { uri: { type: "string", minLength: 1 }, mountPath: { type: "string", pattern: "^/", maxLength: 255 } },
        },
    },
    workerSpec: { type: "object" },
    ...componentExtension,
};

/** Fields of a predictor, transformer or explainer that are KServe's, not the inlined PodSpec's. */
export const kserveOwnPredictorFields = new Set(Object.keys(predictorOwn));

const component = { type: "object", properties: predictorOwn };

export const inferenceServiceSchema = {
    type: "object",
    required: ["apiVersion", "kind", "metadata", "spec"],
    additionalProperties: false,
    properties: {
        apiVersion: { const: "serving.kserve.io/v1beta1" },
        kind: { const: "InferenceService" },
        // KServe's own rule for InferenceService names (a DNS label that starts with a letter).
        metadata: {
            type: "object",
            required: ["name"],
            properties: { name: { type: "string", pattern: "^[a-z]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 } },
        },
        spec: {
            type: "object",
            required: ["predictor"],
            additionalProperties: false,
            properties: {
                predictor: {
                    ...component,
                    // Exactly one implementation: a model server (with containers beside it, if any), or containers
                    // of its own (a custom predictor).
                    oneOf: [
                        ...implementations.map((name) => ({ required: [name] })),
                        { required: ["containers"], properties: { containers: { type: "array", minItems: 1 } }, not: { anyOf: implementations.map((name) => ({ required: [name] })) } },
                    ],
                },
                transformer: component,
                explainer: component,
            },
        },
        status: { type: "object" },
    },
};
