// `npm run bench`: every figure, each next to its raw baseline from the same run.
import { benchHttpCommands, printHttpCommands } from './http-commands.js';
import { benchImport, printImport } from './import.js';
import { benchPlanReads, printPlanReads } from './plan-reads.js';
import { benchRestart, printRestart } from './restart.js';
import { benchViewsRebuild, printViewsRebuild } from './views-rebuild.js';

printHttpCommands(await benchHttpCommands({ target: 'embedded' }));
console.log();
printHttpCommands(await benchHttpCommands({ target: 'postgres' }));
console.log();
printPlanReads(await benchPlanReads());
console.log();
printViewsRebuild(await benchViewsRebuild());
console.log();
printImport(await benchImport());
console.log();
printRestart(await benchRestart());
