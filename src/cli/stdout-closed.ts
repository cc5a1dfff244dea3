/**
 * Ends the process quietly (exit 0) when the reader of stdout goes away, as in
 * `pullgate hosts containerd | head -1`; any other stdout error is reported on stderr with exit 1.
 * Installed once in cli.ts, so every printing command gets it.
 */
export function exitQuietlyWhenStdoutCloses(stdout: NodeJS.WriteStream = process.stdout): void {
  stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    process.stderr.write(`pullgate: cannot write to stdout: ${err.message}\n`);
    process.exit(1);
  });
}
