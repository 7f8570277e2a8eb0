// Runs the front-panel firmware's shared test cases (tests/mcu/cases_*.py) under real
// MicroPython: the WebAssembly port from npm (@micropython/micropython-webassembly-pyscript,
// installed by `make install` into build/micropython-wasm, or MICROPYTHON_WASM_DIR).
// It copies the firmware's modules (all but main.py, which needs the hardware) and the cases
// into the port's in-memory filesystem and runs tests/mcu/runner.py, whose output it prints:
// one PASS/FAIL line per case, then "micropython: N passed, N failed".  Exit status 1 on any
// failure or error.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const wasmDir = process.env.MICROPYTHON_WASM_DIR || path.join(root, "build", "micropython-wasm");
const entry = path.join(
  wasmDir, "node_modules", "@micropython", "micropython-webassembly-pyscript", "micropython.mjs",
);
if (!fs.existsSync(entry)) {
  console.error(`MicroPython's WebAssembly port is not installed at ${entry}: run \`make install\``);
  process.exit(2);
}
const { loadMicroPython } = await import(pathToFileURL(entry).href);

const lines = [];
const mp = await loadMicroPython({
  heapsize: 8 * 1024 * 1024,
  stdout: (line) => { lines.push(line); console.log(line); },
  stderr: (line) => console.error(line),
});

const target = "/mcu";
mp.FS.mkdir(target);
const copy = (dir, keep) => {
  for (const name of fs.readdirSync(dir).sort()) {
    if (name.endsWith(".py") && keep(name)) {
      mp.FS.writeFile(`${target}/${name}`, fs.readFileSync(path.join(dir, name)));
    }
  }
};
copy(path.join(root, "hardware", "mcu"), (name) => name !== "main.py");
copy(here, (name) => name === "runner.py" || name.startsWith("cases_"));

const modules = fs.readdirSync(here)
  .filter((name) => name.startsWith("cases_") && name.endsWith(".py"))
  .sort()
  .map((name) => name.slice(0, -3));

try {
  mp.runPython(
    `import sys\nsys.path.insert(0, "${target}")\nimport runner\n` +
    `failed = runner.main(${JSON.stringify(modules)})\n`,
  );
} catch (error) {
  // A PythonError carries MicroPython's traceback; anything else is the port's own failure.
  console.error(error.name === "PythonError" ? error.message : String(error));
  process.exit(1);
}
process.exit(mp.globals.get("failed") === 0 ? 0 : 1);
