/**
 * Role and target names become file names on clients and path segments in URLs. Names that
 * could climb out of a directory are refused, whatever the metadata says.
 */
import { VerifyError } from './errors.js';
import { isTopLevelRole } from './metadata.js';

function hasUnsafePart(name: string): boolean {
  if (name.length === 0 || name.startsWith('/') || name.includes('\\')) return true;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return true;
  return name.split('/').some((part) => part === '..' || part === '.' || part === '');
}

/** A delegated role name: never a top-level role's name (its file would replace that role's),
 * never a path that climbs. */
export function checkRoleName(name: string, where: string): void {
  if (isTopLevelRole(name) || hasUnsafePart(name)) {
    throw new VerifyError(
      'BAD_NAME',
      `${where}: ${JSON.stringify(name)} is not an acceptable role name`,
    );
  }
}

/** A target path: relative, `/`-separated, with no empty, `.` or `..` segment. */
export function checkTargetPath(path: string, where = 'target path'): void {
  if (hasUnsafePart(path)) {
    throw new VerifyError(
      'BAD_NAME',
      `${where}: ${JSON.stringify(path)} is not an acceptable target path`,
    );
  }
}
