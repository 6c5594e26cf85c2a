// yargs-parser's `./browser` entry is the same parser without its Node mixins (fs, node:module, path, util; used
// only for config files, which the flags never read); @types/yargs-parser declares only the main entry.
declare module 'yargs-parser/browser' {
  import Parser from 'yargs-parser';
  export default Parser;
}
