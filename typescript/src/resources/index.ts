export {
  Lipsync,
  type LipsyncEstimate,
  type LipsyncGenerate,
  type LipsyncGenerateParams,
  type LipsyncGenerateWithMediaParams,
  type ModelName,
  type SpeakerPoint,
  type SyncMode,
} from './lipsync/lipsync.js';
export {
  Requests,
  type LipsyncRequest,
  type OutputSync,
  type Pagination,
  type RequestDeleted,
  type RequestListParams,
  type RequestListResponse,
  type RequestStatus,
  type WaitOptions,
} from './lipsync/requests.js';
