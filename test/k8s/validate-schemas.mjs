// Validates Kubernetes objects (a JSON array on stdin) against the OpenAPI schemas published as the
// kubernetes-models packages (ESM only, hence this helper process). Prints a JSON array with one entry
// per object: { ref, error } where error is null when the object is valid.

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const objects = JSON.parse(Buffer.concat(chunks).toString('utf8'));

/** Module path of a model: core v1 lives at kubernetes-models/v1, groups at <group>/<version>. */
function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group.endsWith('cert-manager.io')) return `@kubernetes-models/cert-manager/${group}/${version}/${kind}`;
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

const results = [];
for (const obj of objects) {
  const ref = `${obj.kind}/${obj.metadata?.name}`;
  let Model;
  try {
    const path = modelPath(obj.apiVersion, obj.kind);
    Model = (await import(path))[obj.kind];
  } catch (err) {
    results.push({ ref, error: `no schema for ${obj.apiVersion} ${obj.kind}: ${err.message}` });
    continue;
  }
  try {
    new Model(obj).validate();
    results.push({ ref, error: null });
  } catch (err) {
    results.push({ ref, error: err.message });
  }
}
process.stdout.write(JSON.stringify(results));
