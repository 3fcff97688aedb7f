"""Body model (SMPL via smplx: a user's SMPL file or the built-in synthetic body), cameras,
rasterizer and view rotation."""
from mesh.body_model import (SHAPE_DIRECTIONS, BodyModelError, build_body_model,
                             builtin_body_path, load_body_model)
from mesh.cameras import (Y_UP_TO_CAMERA, PerspectiveCamera, WeakPerspectiveCamera, fov_to_focal,
                          look_at, ndc_to_pixel, pixel_to_ndc, weak_perspective_to_translation)
from mesh.rasterizer import Fragments, RenderOutput, interpolate, rasterize, render
from mesh.rotation import (axis_angle_to_matrix, body_center, matrix_to_axis_angle,
                           rotate_about_vertical, rotate_body, yaw_matrix, yaw_smpl_params)
from mesh.shading import lambert, vertex_normals
