// The explorer: systematic exploration of lifecycle races in the VFIO model (README "Exploring").
// Top level: exploreFile / replayFile / counterexampleProgram (a scenario file, as `vfiosim
// explore` takes it), explore / replayScheduleText (a parsed Scenario).

export {
  ExploreUsageError, counterexampleProgram, exploreFile, loadScenarioFile, loadVariantModules, replayFile,
} from './api.js';
export type { ExploreFileOptions, LoadedScenario } from './api.js';
export { matchesPrediction, parseProgramOutput, predictLinux, predictionText } from './predict.js';
export type { PredictedLine, Prediction } from './predict.js';
export { exploreMain } from './cli.js';
export type { ExploreIO } from './cli.js';
export { explore, replayScheduleText, resolveVariant, ReplayError } from './explore.js';
export type { ExploreOptions, ExploreResult, ReplayResult, Verdict } from './explore.js';
export { Engine, traceKey } from './engine.js';
export type { EngineOptions, EngineStats, FoundViolation, LockCycle, Progress, Strategy } from './engine.js';
export { Execution, ExploreScheduler, prepareScenario } from './execution.js';
export type { ExecOptions, PreparedScenario, XEvent } from './execution.js';
export { expressionInvariant } from './invariants.js';
export type { InvariantContext, UserInvariant, Violation } from './invariants.js';
export { VARIANTS, applyVariant, variantByName } from './variants.js';
export type { Variant } from './variants.js';
export {
  buildCounterexample, counterexampleC, formatCounterexample, parseSchedule, replay, scheduleText, traceOf,
} from './counterexample.js';
export type { Counterexample, TraceStep } from './counterexample.js';
export { exportC } from './cexport.js';
export * as kit from './variant_kit.js';
