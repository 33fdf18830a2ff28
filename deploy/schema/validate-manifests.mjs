// Checks Kubernetes manifests against the schemas of their kinds, as the API server would before storing them:
//
//   node validate-manifests.mjs <node_modules folder> <file.yaml | -> ...
//
// Built-in kinds (Deployment, Service, ...) are checked against the Kubernetes OpenAPI schemas that the
// kubernetes-models package compiles (types, required fields, enums, formats such as quantities and
// int-or-string); PodMonitor and ServiceMonitor against the Prometheus Operator's CRD schemas
// (@kubernetes-models/prometheus-operator); InferenceService against kserve-schema.mjs, KServe's v1beta1 types
// with the pod-spec part of a predictor checked as a Kubernetes PodSpec. On top of the schemas, every field must
// be one the schema knows: the API server rejects unknown fields under strict field validation (kubectl's
// default), and a misspelt field would otherwise pass silently. A kind with no schema is an error, so a new
// kind of manifest cannot go unchecked.
//
// Prints one line per problem ("file: Kind/name: path message") and exits 1 if there was any.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { inferenceServiceSchema, kserveOwnPredictorFields } from "./kserve-schema.mjs";

const [modules, ...files] = process.argv.slice(2);
if (!modules || files.length === 0) {
    console.error("usage: node validate-manifests.mjs <node_modules folder> <file.yaml | ->...");
    process.exit(2);
}

const load = (path) => import(pathToFileURL(join(modules, path)).href);
const { parseAllDocuments } = await load("yaml/dist/index.js");
const Ajv = (await load("ajv/dist/ajv.js")).default;

// The schema module of a built-in kind: IoK8sApi<Group><Version><Kind> (group "" is Core).
function builtInSchema(apiVersion, kind) {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    const groupName = group === "" ? "Core" : group.split(".")[0].replace(/^./, (c) => c.toUpperCase());
    return `kubernetes-models/_schemas/IoK8sApi${groupName}${version.replace(/^./, (c) => c.toUpperCase())}${kind}.js`;
}

const customSchemas = {
    "monitoring.coreos.com/v1/PodMonitor": "@kubernetes-models/prometheus-operator/_schemas/ComGithubPrometheusOperatorPrometheusOperatorPkgApisMonitoringV1PodMonitor.js",
    "monitoring.coreos.com/v1/ServiceMonitor": "@kubernetes-models/prometheus-operator/_schemas/ComGithubPrometheusOperatorPrometheusOperatorPkgApisMonitoringV1ServiceMonitor.js",
};

async function schemaFor(apiVersion, kind) {
    const path = customSchemas[`${apiVersion}/${kind}`] ?? (apiVersion.includes(".") ? null : builtInSchema(apiVersion, kind));
    if (!path) {
        return null;
    }
    try {
        return (await load(path)).validate;
    } catch {
        return null;
    }
}

/**
 * A copy of the document in which every object records which of its fields a validator read, and whether it
 * enumerated them (a map such as labels: every key is then allowed). Compiled schema validators read exactly the
 * fields their schema declares, so a field nobody read is one the schema does not know.
 */
function tracked(value, path, objects) {
    if (Array.isArray(value)) {
        return value.map((item, i) => tracked(item, `${path}[${i}]`, objects));
    }
    if (value === null || typeof value !== "object") {
        return value;
    }
    const target = {};
    const record = { path, keys: Object.keys(value), read: new Set(), enumerated: false };
    for (const key of record.keys) {
        target[key] = tracked(value[key], `${path}.${key}`, objects);
    }
    objects.push(record);
    return new Proxy(target, {
        get(t, key, receiver) {
            if (typeof key === "string") record.read.add(key);
            return Reflect.get(t, key, receiver);
        },
        has(t, key) {
            if (typeof key === "string") record.read.add(key);
            return Reflect.has(t, key);
        },
        ownKeys(t) {
            record.enumerated = true;
            return Reflect.ownKeys(t);
        },
    });
}

/** Runs a compiled validator over the document and returns its schema errors and the fields it did not know. */
function check(validate, document, path = "") {
    const objects = [];
    const ok = validate(tracked(document, path, objects));
    const problems = ok ? [] : (validate.errors ?? []).map((e) => `${path}${pointer(e.instancePath)} ${describe(e)}`);
    const unknown = new Set();
    for (const object of objects) {
        if (object.enumerated || [...unknown].some((u) => object.path.startsWith(u + ".") || object.path.startsWith(u + "["))) {
            continue;
        }
        // An object the validator never looked into lies under a field it did not know (reported there) or
        // under a schema-less value; one it looked into must have had all its fields read.
        if (object.read.size === 0 && object.keys.length > 0 && object.path !== path) {
            continue;
        }
        for (const key of object.keys.filter((k) => !object.read.has(k))) {
            unknown.add(`${object.path}.${key}`);
        }
    }
    return problems.concat([...unknown].map((u) => `${u} is not a field of this kind (unknown to its schema)`));
}

/** A JSON pointer (/spec/containers/0/image) written as the unknown-field paths are (.spec.containers[0].image). */
function pointer(instancePath) {
    return instancePath.split("/").slice(1).map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`)).join("");
}

function describe(error) {
    switch (error.keyword) {
        case "type": return `must be ${error.params.type}`;
        case "required": return `needs ${error.params.missingProperty}`;
        case "enum": return `must be one of ${error.params.allowedValues.join(", ")}`;
        case "additionalProperties": return `has unknown field ${error.params.additionalProperty}`;
        default: return error.message ?? `fails ${error.keyword} ${JSON.stringify(error.params)}`;
    }
}

// InferenceService: KServe's own fields through its schema (no unknown field anywhere but in the predictor's
// pod-spec part), then the predictor without them as a Kubernetes PodSpec.
const ajv = new Ajv({ allErrors: true, strict: false });
const validateInferenceServiceOwn = ajv.compile(inferenceServiceSchema);
const validateObjectMeta = (await load("@kubernetes-models/apimachinery/_schemas/IoK8sApimachineryPkgApisMetaV1ObjectMeta.js")).validate;
const validatePodSpec = (await load("kubernetes-models/_schemas/IoK8sApiCoreV1PodSpec.js")).validate;

function checkInferenceService(document) {
    const problems = validateInferenceServiceOwn(document)
        ? []
        : validateInferenceServiceOwn.errors.map((e) => `${pointer(e.instancePath)} ${describe(e)}`);
    problems.push(...check(validateObjectMeta, document.metadata ?? {}, ".metadata"));
    for (const component of ["predictor", "transformer", "explainer"]) {
        const spec = document.spec?.[component];
        if (spec && typeof spec === "object") {
            const podSpec = Object.fromEntries(Object.entries(spec).filter(([key]) => !kserveOwnPredictorFields.has(key)));
            if (podSpec.containers !== undefined || component === "predictor") {
                problems.push(...check(validatePodSpec, { containers: [], ...podSpec }, `.spec.${component}`));
            }
        }
    }
    return problems;
}

let failures = 0;
let checked = 0;
for (const file of files) {
    const text = readFileSync(file === "-" ? 0 : file, "utf8");
    const name = file === "-" ? "(stdin)" : file;
    for (const parsed of parseAllDocuments(text)) {
        if (parsed.errors.length > 0) {
            console.log(`${name}: ${parsed.errors[0].message}`);
            failures++;
            continue;
        }
        const document = parsed.toJS();
        if (document === null || document === undefined) {
            continue;
        }
        const { apiVersion, kind } = document;
        const label = `${name}: ${kind ?? "?"}/${document.metadata?.name ?? "?"}`;
        let problems;
        if (typeof apiVersion !== "string" || typeof kind !== "string") {
            problems = ["a manifest needs apiVersion and kind"];
        } else if (apiVersion === "serving.kserve.io/v1beta1" && kind === "InferenceService") {
            problems = checkInferenceService(document);
        } else {
            const validate = await schemaFor(apiVersion, kind);
            problems = validate ? check(validate, document) : [`no schema for ${apiVersion} ${kind}: add one to deploy/schema`];
        }
        checked++;
        for (const problem of problems) {
            console.log(`${label}: ${problem.replace(/^\./, "")}`);
            failures++;
        }
    }
}
console.log(`${checked} manifest(s) checked against their schemas, ${failures} problem(s)`);
process.exit(failures > 0 ? 1 : 0);
