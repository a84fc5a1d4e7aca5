/** Quotes a value for a POSIX shell. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A heredoc-free way to write a file from a script: printf with the content quoted. */
export function writeFileCommand(path: string, content: string, mode = '0644'): string {
  return `mkdir -p "$(dirname ${shq(path)})" && printf '%s' ${shq(content)} > ${shq(path)} && chmod ${mode} ${shq(path)}`;
}
