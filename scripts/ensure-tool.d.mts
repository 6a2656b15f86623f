// Types for scripts/ensure-tool.mjs, so TypeScript tests and benchmarks can import it.
/** Makes sure `bin` is on PATH, installing Debian's `pkg` for it when missing and root. */
export function ensureTool(bin: string, pkg: string): void;
